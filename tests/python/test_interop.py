"""One service's life seen by every kind of client at once, against the real discoveryd.

The Python client registers; libdiscovery resolves (through discoveryctl,
which is built on it); `discoveryctl watch` and a bare `nngcat --sub` both
see the health change that a real HTTP server causes; the shell script
deregisters. After each step every party reports the same state and the
same revision.

Paths come from ctest's environment: DISCOVERYD, DISCOVERYCTL, DISCOVERY_SH,
PROTO_DIR; nngcat, protoc and dash come from PATH.
"""

import json
import shutil
import subprocess
import threading
import unittest

import discovery_client as dc
from discovery_client import pb
from support import (FAST, LIVENESS, Daemon, HealthServer, env_path, kill_children, next_event,
                     spawn, stop_process, wait_until)

SERVICE = "interop-svc"


class Lines:
    """Collects a child's stdout lines on a thread, for polling."""

    def __init__(self, proc, parse):
        self.proc = proc
        self.items = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, args=(parse,), daemon=True)
        self.thread.start()

    def _read(self, parse):
        for raw in self.proc.stdout:
            item = parse(raw)
            with self.lock:
                self.items.append(item)

    def find(self, pred, what):
        def look():
            with self.lock:
                return next((x for x in self.items if pred(x)), None)
        return wait_until(look, what)


def nngcat_event(line):
    """One --hex line, "\\x0a\\x0b...", back to a decoded Event."""
    text = line.decode().strip().strip('"').replace("\\x", "")
    return pb.Event.FromString(bytes.fromhex(text))


class InteropTest(unittest.TestCase):
    def setUp(self):
        self.passed = False
        # Cleanups run last-in first-out: the server stops before any
        # subscriber goes away (see support.py on nng 1.5.2).
        self.addCleanup(kill_children)  # whatever a failure left running
        self.http = HealthServer(200)
        self.addCleanup(self.http.close)
        self.daemon = Daemon(FAST)
        self.py = dc.Client(self.daemon.url, timeout=5, publish_url=self.daemon.pub_url)
        self.addCleanup(self.py.close)
        self.py_watch = self.py.watch([SERVICE], include_sync=True)
        self.addCleanup(self.py_watch.close)
        self.addCleanup(self.stop_daemon)
        self.ctl_path = env_path("DISCOVERYCTL")
        self.sh = [shutil.which("dash") or "sh", env_path("DISCOVERY_SH"),
                   "--server", self.daemon.url, "--publish", self.daemon.pub_url,
                   "--proto", env_path("PROTO_DIR")]

    def stop_daemon(self):
        if self.daemon.proc.returncode is not None:
            return
        rc = self.daemon.stop()
        if rc != 0 or not self.passed:
            print("---- discoveryd log ----\n" + self.daemon.log_text())
        self.assertEqual(rc, 0, "discoveryd exit status")
        self.daemon.remove_log()

    def ctl(self, *args):
        """discoveryctl (libdiscovery) to completion: (exit status, stdout)."""
        p = subprocess.run([self.ctl_path, "--server", self.daemon.url, "--publish",
                            self.daemon.pub_url, *args], capture_output=True, text=True,
                           timeout=LIVENESS)
        return p.returncode, p.stdout.strip()

    def shell(self, *args):
        p = subprocess.run(self.sh + list(args), capture_output=True, text=True, timeout=LIVENESS)
        return p.returncode, p.stdout.strip()

    def everyone_sees(self, health, revision):
        """Python, libdiscovery and the shell script report one state at one revision."""
        insts = self.py.get_all(SERVICE)
        self.assertEqual([(i.endpoint, i.health) for i in insts], [(self.http.endpoint, health)])
        self.assertEqual(self.py.revision, revision, "Python's GetAll revision")

        rc, out = self.ctl("--json", "list", SERVICE)
        self.assertEqual(rc, 0)
        listed = json.loads(out)
        name = pb.HealthState.Name(health)[len("HEALTH_"):].lower()
        self.assertEqual([(i["endpoint"], i["health"]) for i in listed["instances"]],
                         [(self.http.endpoint, name)])
        self.assertEqual(listed["revision"], revision, "discoveryctl's revision")

        rc, out = self.shell("list", SERVICE)
        self.assertEqual((rc, out), (0, "%s %s %s" % (SERVICE, self.http.endpoint, name)))
        rc, out = self.shell("--text", "list", SERVICE)
        self.assertIn("revision: %d" % revision, out.splitlines(), "the shell's revision")

        rc, out = self.ctl("health", SERVICE)
        self.assertEqual(rc, 0 if health == pb.HEALTH_HEALTHY else 1, out)
        rc, out = self.shell("health", SERVICE)
        self.assertEqual((rc, out), (0 if health == pb.HEALTH_HEALTHY else 1, name))

    def test_one_service_across_every_client(self):
        # The watchers first; a SYNC on each proves it is connected.
        ctl_watch = spawn([self.ctl_path, "--publish", self.daemon.pub_url, "--json", "watch",
                           SERVICE], stdout=subprocess.PIPE)
        ctl_events = Lines(ctl_watch, json.loads)
        nng_watch = spawn(["nngcat", "--sub", "--connect", self.daemon.pub_url,
                           "--subscribe", dc.subscription_prefix(SERVICE),
                           "--subscribe", dc.SYNC_PREFIX, "--hex"], stdout=subprocess.PIPE)
        nng_events = Lines(nng_watch, nngcat_event)
        py_watch = self.py_watch
        ctl_events.find(lambda e: e["type"] == "sync", "a SYNC at discoveryctl watch")
        nng_events.find(lambda e: e.type == pb.EVENT_SYNC, "a SYNC at nngcat --sub")
        next_event(py_watch, lambda e: e.type == pb.EVENT_SYNC, "a SYNC at the Python watch")

        # 1. Python registers; the HTTP server answers 200, so it turns healthy.
        self.py.register(SERVICE, self.http.endpoint, metadata={"lang": "python"})
        up = next_event(py_watch, lambda e: e.type == pb.EVENT_HEALTH_CHANGED, "healthy")
        self.assertEqual(up.instance.health, pb.HEALTH_HEALTHY)

        # 2. libdiscovery resolves it (discoveryctl resolve is dsc_resolve).
        self.assertEqual(self.ctl("resolve", SERVICE), (0, self.http.endpoint))
        self.assertEqual(self.ctl("resolve", SERVICE, "--healthy-only"), (0, self.http.endpoint))
        self.everyone_sees(pb.HEALTH_HEALTHY, up.revision)

        # 3. The HTTP server fails: every watcher sees the same change.
        self.http.status = 500
        down = next_event(py_watch, lambda e: e.type == pb.EVENT_HEALTH_CHANGED, "unhealthy")
        self.assertEqual((down.previous, down.instance.health, down.reason),
                         (pb.HEALTH_HEALTHY, pb.HEALTH_UNHEALTHY, "HTTP 500"))
        c = ctl_events.find(lambda e: e["type"] == "health_changed" and e["health"] == "unhealthy",
                            "discoveryctl watch to see the failure")
        self.assertEqual((c["service"], c["endpoint"], c["previous"], c["revision"], c["reason"]),
                         (SERVICE, self.http.endpoint, "healthy", down.revision, "HTTP 500"))
        n = nng_events.find(lambda e: e.type == pb.EVENT_HEALTH_CHANGED and
                            e.instance.health == pb.HEALTH_UNHEALTHY, "nngcat to see the failure")
        self.assertEqual(n, down)
        self.assertEqual(self.ctl("resolve", SERVICE, "--healthy-only")[0], 1)
        self.assertIsNone(self.py.resolve(SERVICE, healthy_only=True))
        self.everyone_sees(pb.HEALTH_UNHEALTHY, down.revision)

        # 4. The shell script deregisters: gone for everyone, one revision later.
        self.assertEqual(self.shell("deregister", SERVICE), (0, "removed 1"))
        gone = next_event(py_watch, lambda e: e.type == pb.EVENT_DEREGISTERED, "deregistered")
        self.assertEqual(gone.revision, down.revision + 1)
        c = ctl_events.find(lambda e: e["type"] == "deregistered", "discoveryctl's deregistered")
        self.assertEqual((c["endpoint"], c["revision"]), (self.http.endpoint, gone.revision))
        n = nng_events.find(lambda e: e.type == pb.EVENT_DEREGISTERED, "nngcat's deregistered")
        self.assertEqual(n, gone)
        self.assertIsNone(self.py.resolve(SERVICE))
        self.assertEqual(self.ctl("resolve", SERVICE)[0], 1)
        self.assertEqual(self.shell("resolve", SERVICE)[0], 1)
        self.assertEqual(self.py.get_all(SERVICE), [])
        self.assertEqual(self.py.revision, gone.revision)

        # Every watcher saw the same sequence of this service's changes.
        def changes(evs):
            return [(e.type, e.revision) for e in evs if e.type != pb.EVENT_SYNC]
        with nng_events.lock:
            nng_seen = changes(nng_events.items)
        with ctl_events.lock:
            ctl_seen = [(pb.EventType.Value("EVENT_" + e["type"].upper()), e["revision"])
                        for e in ctl_events.items if e["type"] != "sync"]
        self.assertEqual(nng_seen, ctl_seen)
        self.assertEqual([t for t, _ in nng_seen],
                         [pb.EVENT_REGISTERED, pb.EVENT_HEALTH_CHANGED, pb.EVENT_HEALTH_CHANGED,
                          pb.EVENT_DEREGISTERED])
        self.stop_daemon()  # before the watchers go (see setUp)
        self.assertEqual(stop_process(ctl_watch), 0, "discoveryctl watch exit status on SIGTERM")
        stop_process(nng_watch)
        self.passed = True


if __name__ == "__main__":
    unittest.main(verbosity=2)
