"""The Python client (clients/python/discovery_client.py) against the real discoveryd.

Run by ctest with /usr/bin/python3, PYTHONPATH holding the client and the
generated discovery_pb2, and DISCOVERYD naming the server binary.
"""

import ctypes
import os
import socket
import subprocess
import sys
import threading
import unittest

import discovery_client as dc
from discovery_client import pb
from support import FAST, FAST_HEALTH, LIVENESS, Daemon, HealthServer, connect_watch, env_path, next_event, wait_until


def free_port():
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ClientTest(unittest.TestCase):
    """Each test gets its own discoveryd, stopped before its clients and
    watches close (see support.py on nng 1.5.2), so tests cannot disturb
    each other through leftover instances and their health events."""

    def setUp(self):
        self.closers = []
        self.addCleanup(self.close_all)  # runs after the daemon has stopped
        self.daemon = Daemon(FAST_HEALTH)
        self.addCleanup(self.stop_daemon)
        self.c = self.client(token="test-token")  # carried, not checked yet

    def close_all(self):
        for close in reversed(self.closers):
            close()

    def stop_daemon(self):
        rc = self.daemon.stop()
        if rc != 0:
            sys.stderr.write(self.daemon.log_text())
        self.assertEqual(rc, 0, "discoveryd exit status")
        self.daemon.remove_log()

    def client(self, **kw):
        kw.setdefault("timeout", 5)
        c = dc.Client(self.daemon.url, publish_url=self.daemon.pub_url, **kw)
        self.closers.append(c.close)
        return c

    def watch(self, services=None, include_sync=False):
        w = self.c.watch(services, include_sync)
        self.closers.append(w.close)
        return w

    def http(self, status=200):
        srv = HealthServer(status)
        self.addCleanup(srv.close)
        return srv

    def assertStatus(self, status, fn, *args, **kw):  # noqa: N802
        with self.assertRaises(dc.DiscoveryError) as cm:
            fn(*args, **kw)
        self.assertEqual(cm.exception.status, status, str(cm.exception))
        self.assertEqual(cm.exception.status_name, pb.StatusCode.Name(status))
        return cm.exception

    # ---- register ----

    def test_register_returns_the_stored_instance(self):
        inst = self.c.register("Reg_Svc", "http://127.0.0.1:9001", metadata={"zone": "b", "az": "1"},
                               ttl_ms=5000, weight=3)
        self.assertIsInstance(inst, pb.Instance)
        self.assertEqual(inst.service, "reg-svc")
        self.assertEqual(inst.endpoint, "http://127.0.0.1:9001")
        self.assertEqual(inst.health_path, "/health")
        self.assertEqual((inst.ttl_ms, inst.weight), (5000, 3))
        self.assertEqual(dict(inst.metadata), {"az": "1", "zone": "b"})
        self.assertGreater(self.c.revision, 0)
        # Idempotent: an update keeps registered_at_ms.
        again = self.c.register("reg-svc", "http://127.0.0.1:9001", health_path="status")
        self.assertEqual(again.health_path, "/status")
        self.assertEqual(again.registered_at_ms, inst.registered_at_ms)
        self.assertEqual(dict(again.metadata), {})

    def test_register_errors_carry_the_status(self):
        e = self.assertStatus(pb.STATUS_INVALID_ARGUMENT, self.c.register, "bad name", "http://h:1")
        self.assertTrue(e.message)
        self.assertIn("STATUS_INVALID_ARGUMENT", str(e))
        self.assertStatus(pb.STATUS_INVALID_ARGUMENT, self.c.register, "ok", "ftp://h:1")
        self.assertStatus(pb.STATUS_INVALID_ARGUMENT, self.c.register, "ok", "http://h:1", ttl_ms=5)
        self.assertStatus(pb.STATUS_INVALID_ARGUMENT, self.c.register, "ok", "http://h:1",
                          metadata={"bad key": "v"})
        self.assertStatus(pb.STATUS_RESOURCE_EXHAUSTED, self.c.register, "ok", "http://h:1",
                          metadata={"k%d" % i: "v" for i in range(65)})

    # ---- resolve ----

    def test_resolve_returns_the_endpoint_or_none(self):
        self.c.register("res-svc", "http://127.0.0.1:9002")
        self.assertEqual(self.c.resolve("Res_Svc"), "http://127.0.0.1:9002")
        self.assertIsNone(self.c.resolve("res-nope"))
        self.assertStatus(pb.STATUS_NOT_FOUND, self.c.resolve_instance, "res-nope")
        self.assertStatus(pb.STATUS_INVALID_ARGUMENT, self.c.resolve, "bad name")

    def test_resolve_healthy_only(self):
        # Nothing answers there: the instance is never healthy.
        dead = "http://127.0.0.1:%d" % free_port()
        self.c.register("res-dead", dead)
        self.assertEqual(self.c.resolve("res-dead"), dead)  # a registered service always resolves
        self.assertIsNone(self.c.resolve("res-dead", healthy_only=True))
        self.assertStatus(pb.STATUS_UNAVAILABLE, self.c.resolve_instance, "res-dead", True)
        live = self.http(200)
        self.c.register("res-dead", live.endpoint)
        self.assertTrue(self.c.wait_for_services(["res-dead"], LIVENESS))
        for _ in range(4):
            self.assertEqual(self.c.resolve("res-dead", healthy_only=True), live.endpoint)
            self.assertEqual(self.c.resolve("res-dead"), live.endpoint)

    # ---- deregister ----

    def test_deregister(self):
        for port in (9003, 9004, 9005):
            self.c.register("dereg-svc", "http://127.0.0.1:%d" % port)
        self.assertEqual(self.c.deregister("dereg-svc", "http://127.0.0.1:9003"), 1)
        self.assertEqual(self.c.deregister("dereg-svc", "http://127.0.0.1:9003"), 0)
        self.assertEqual(self.c.deregister("DEREG_SVC"), 2)
        self.assertEqual(self.c.deregister("dereg-svc"), 0)
        self.assertIsNone(self.c.resolve("dereg-svc"))

    # ---- is_healthy ----

    def test_is_healthy(self):
        srv = self.http(200)
        self.c.register("hc-svc", srv.endpoint)
        wait_until(lambda: self.c.is_healthy("hc-svc"), "hc-svc to become healthy")
        self.assertTrue(self.c.is_healthy("hc-svc", srv.endpoint))
        h = self.c.health("hc-svc")
        self.assertEqual((h.healthy, h.state), (True, pb.HEALTH_HEALTHY))
        srv.status = 503
        wait_until(lambda: not self.c.is_healthy("hc-svc"), "hc-svc to become unhealthy")
        self.assertEqual(self.c.health("hc-svc", srv.endpoint).state, pb.HEALTH_UNHEALTHY)
        # Unknown service or instance: False, or NOT_FOUND from health().
        self.assertFalse(self.c.is_healthy("hc-nope"))
        self.assertFalse(self.c.is_healthy("hc-svc", "http://127.0.0.1:1"))
        self.assertStatus(pb.STATUS_NOT_FOUND, self.c.health, "hc-nope")
        self.assertStatus(pb.STATUS_NOT_FOUND, self.c.health, "hc-svc", "http://127.0.0.1:1")

    # ---- get_all ----

    def test_get_all(self):
        self.c.register("all-b", "http://127.0.0.1:9011")
        self.c.register("all-a", "http://127.0.0.1:9013")
        self.c.register("all-a", "http://127.0.0.1:9012")
        mine = [(i.service, i.endpoint) for i in self.c.get_all() if i.service.startswith("all-")]
        self.assertEqual(mine, [("all-a", "http://127.0.0.1:9012"), ("all-a", "http://127.0.0.1:9013"),
                                ("all-b", "http://127.0.0.1:9011")])
        some = self.c.get_all("ALL_A")
        self.assertEqual([i.endpoint for i in some], ["http://127.0.0.1:9012", "http://127.0.0.1:9013"])
        self.assertGreater(self.c.revision, 0)
        self.assertEqual(self.c.get_all("all-nope"), [])

    # ---- heartbeat ----

    def test_heartbeat(self):
        inst = self.c.register("hb-svc", "http://127.0.0.1:9021", ttl_ms=60000)
        self.assertEqual(inst.health, pb.HEALTH_UNKNOWN)
        inst = self.c.heartbeat("hb-svc", "http://127.0.0.1:9021")
        self.assertEqual(inst.health, pb.HEALTH_HEALTHY)
        self.assertTrue(self.c.is_healthy("hb-svc"))
        self.c.register("hb-polled", "http://127.0.0.1:9022")
        self.assertStatus(pb.STATUS_FAILED_PRECONDITION, self.c.heartbeat, "hb-polled",
                          "http://127.0.0.1:9022")
        self.assertStatus(pb.STATUS_NOT_FOUND, self.c.heartbeat, "hb-svc", "http://127.0.0.1:9")

    # ---- status ----

    def test_status(self):
        self.c.register("st-svc", "http://127.0.0.1:9031", ttl_ms=60000)
        st = self.c.status()
        self.assertGreaterEqual(st.instances, 1)
        self.assertEqual(st.healthy + st.unhealthy + st.unknown, st.instances)
        self.assertEqual(st.revision, self.c.revision)
        self.assertEqual(list(st.listeners), [self.daemon.url])
        self.assertTrue(st.version)

    # ---- watch ----

    def test_watch_one_service(self):
        srv = self.http(200)
        seen = []
        w = self.watch(["Watch_Me"])
        connect_watch(self.c, w, "watch-me")

        def until(pred, what):
            def keep(e):
                seen.append(e)
                return pred(e)
            return next_event(w, keep, what)

        self.c.register("watch-me-too", srv.endpoint)
        self.c.register("watch-me", srv.endpoint)
        ev = until(lambda e: e.type == pb.EVENT_REGISTERED, "REGISTERED")
        self.assertEqual((ev.service, ev.instance.endpoint), ("watch-me", srv.endpoint))
        ev = until(lambda e: e.type == pb.EVENT_HEALTH_CHANGED, "HEALTH_CHANGED to healthy")
        self.assertEqual((ev.previous, ev.instance.health), (pb.HEALTH_UNKNOWN, pb.HEALTH_HEALTHY))
        srv.status = 500
        ev = until(lambda e: e.type == pb.EVENT_HEALTH_CHANGED, "HEALTH_CHANGED to unhealthy")
        self.assertEqual((ev.previous, ev.instance.health), (pb.HEALTH_HEALTHY, pb.HEALTH_UNHEALTHY))
        self.assertEqual(ev.reason, "HTTP 500")
        self.c.deregister("watch-me")
        ev = until(lambda e: e.type == pb.EVENT_DEREGISTERED, "DEREGISTERED")
        self.assertEqual(ev.revision, self.c.revision)
        # Only watch-me's events came (SYNCs are not asked for), in revision order.
        self.assertEqual({e.service for e in seen}, {"watch-me"})
        revs = [e.revision for e in seen]
        self.assertEqual(revs, sorted(set(revs)))

    def test_watch_with_sync(self):
        fast = Daemon(FAST)  # SYNC every 0.2 s
        w = dc.Watch(fast.pub_url, ["sync-me"], include_sync=True)
        try:
            ev = next_event(w, lambda e: True, "a SYNC")
        finally:
            rc = fast.stop()  # the server first, then the subscriber
            w.close()
        fast.remove_log()
        self.assertEqual(rc, 0)
        self.assertEqual((ev.type, ev.service, ev.revision), (pb.EVENT_SYNC, "", 0))

    def test_watch_everything_and_close_from_another_thread(self):
        w = self.watch()
        connect_watch(self.c, w, "watch-all")
        events = []

        def consume():
            for ev in w:
                events.append(ev)

        t = threading.Thread(target=consume)
        t.start()
        self.c.register("watch-all", "http://127.0.0.1:9031", ttl_ms=60000)
        self.c.register("watch-all-other", "http://127.0.0.1:9031", ttl_ms=60000)
        wait_until(lambda: len(events) >= 2, "two REGISTERED events")
        self.assertEqual([(e.type, e.service) for e in events],
                         [(pb.EVENT_REGISTERED, "watch-all"), (pb.EVENT_REGISTERED, "watch-all-other")])
        w.close()
        t.join(LIVENESS)
        self.assertFalse(t.is_alive(), "iteration did not end on close()")
        with self.assertRaises(dc.TransportError):
            w.next(0.01)

    # ---- wait_for_services ----

    def test_wait_for_services_returns_when_all_are_healthy(self):
        a, b = self.http(200), self.http(200)
        result = []
        t = threading.Thread(target=lambda: result.append(
            self.c.wait_for_services(["wait-a", "Wait_B"], LIVENESS)))
        t.start()
        other = self.client()
        other.register("wait-a", a.endpoint)
        other.register("wait-b", b.endpoint)
        t.join(LIVENESS + 5)
        self.assertEqual(result, [True])
        self.assertTrue(self.c.is_healthy("wait-a") and self.c.is_healthy("wait-b"))

    def test_wait_for_services_times_out_naming_what_is_missing(self):
        sick = self.http(500)
        self.c.register("wait-sick", sick.endpoint)
        wait_until(lambda: self.c.health("wait-sick").state == pb.HEALTH_UNHEALTHY, "wait-sick unhealthy")
        with self.assertRaises(dc.ServicesNotReady) as cm:
            self.c.wait_for_services(["wait-sick", "wait-missing"], 0.5)
        e = cm.exception
        self.assertIsInstance(e, TimeoutError)
        self.assertEqual((e.missing, e.unhealthy, e.unreachable), (["wait-missing"], ["wait-sick"], []))
        self.assertIn("missing: wait-missing", str(e))
        self.assertIn("not healthy: wait-sick", str(e))

    # ---- names and transport ----

    def test_names_and_prefixes(self):
        self.assertEqual(dc.normalize_name("Memory_Service"), "memory-service")
        self.assertEqual(dc.subscription_prefix("Memory"), b"\x0a\x06memory")
        self.assertEqual(dc.SYNC_PREFIX, pb.Event(type=pb.EVENT_SYNC).SerializeToString()[:2])
        for bad in ("", "-x", "a b", "x" * 64, "caf\u00e9"):
            with self.assertRaises(ValueError):
                dc.normalize_name(bad)

    def test_the_documented_example_runs(self):
        # docs/clients.md's Python example, as written, with this daemon's URLs.
        docs = os.path.join(env_path("PROTO_DIR"), "..", "docs", "clients.md")
        with open(docs, encoding="utf-8") as f:
            text = f.read()
        section = text[text.index("### Python"):]
        code = section[section.index("```python\n") + 10:]
        code = code[:code.index("```")]
        code = code.replace("tcp://127.0.0.1:7700", self.daemon.url)
        code = code.replace("tcp://127.0.0.1:7701", self.daemon.pub_url)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=LIVENESS * 2)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("True HEALTH_HEALTHY", out.stdout)
        self.assertIn("5 STATUS_NOT_FOUND", out.stdout)

    def test_req_resend_is_off(self):
        # nng would resend a request after 60 s and run a slow call twice.
        get_ms = dc._nng.lib.nng_socket_get_ms
        get_ms.argtypes = [dc._nng.Socket, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int32)]
        value = ctypes.c_int32(0)
        self.assertEqual(get_ms(self.c._socks[0], b"req:resend-time", ctypes.byref(value)), 0)
        self.assertEqual(value.value, -1)  # NNG_DURATION_INFINITE
        self.c.resolve("anything")  # a call sets its receive timeout: the client's
        self.assertEqual(get_ms(self.c._socks[0], b"recv-timeout", ctypes.byref(value)), 0)
        self.assertEqual(value.value, 5000)

    def test_transport_errors(self):
        with dc.Client("tcp://127.0.0.1:%d" % free_port(), timeout=0.3) as dead:
            with self.assertRaises(dc.TransportError) as cm:
                dead.resolve("anything")
            self.assertTrue(cm.exception.timed_out, str(cm.exception))
            with self.assertRaises(dc.ServicesNotReady) as cm:
                dead.wait_for_services(["anything"], 0.5)
            self.assertEqual(cm.exception.unreachable, ["anything"])
        with self.assertRaises(dc.TransportError):
            dead.resolve("anything")  # closed
        with self.assertRaises(ValueError):
            dc.Client("nope://127.0.0.1:1")


class MinRevisionTest(unittest.TestCase):
    """min_revision= and read_own_writes: two independent servers, each
    waiting 0.2 s for a revision it is behind (docs/protocol.md)."""

    def setUp(self):
        self.closers = []
        self.addCleanup(self.close_all)
        self.a = Daemon(["--min-revision-wait", "0.2"])
        self.addCleanup(self.stop, self.a)
        self.b = Daemon(["--min-revision-wait", "0.2"])
        self.addCleanup(self.stop, self.b)

    def close_all(self):
        for close in reversed(self.closers):
            close()

    def stop(self, d):
        if d.proc.poll() is None:
            self.assertEqual(d.stop(), 0, d.log_text())
        d.remove_log()

    def client(self, urls, **kw):
        c = dc.Client(urls, timeout=LIVENESS, **kw)
        self.closers.append(c.close)
        return c

    def test_behind_is_unavailable_with_both_revisions(self):
        c = self.client(self.a.url)
        c.register("mr", "http://127.0.0.1:9", ttl_ms=600000)
        now = c.revision
        self.assertEqual(c.resolve("mr", min_revision=now), "http://127.0.0.1:9")
        for call in (lambda: c.resolve("mr", min_revision=now + 7),
                     lambda: c.get_all(min_revision=now + 7),
                     lambda: c.status(min_revision=now + 7)):
            with self.assertRaises(dc.DiscoveryError) as cm:
                call()
            self.assertEqual(cm.exception.status, pb.STATUS_UNAVAILABLE)
            self.assertIn("this server is at revision %d, behind the requested %d" % (now, now + 7),
                          str(cm.exception))
            self.assertEqual(c.revision, now)
        c.min_revision = now + 7  # the client-wide default
        with self.assertRaises(dc.DiscoveryError):
            c.is_healthy("mr")
        self.assertFalse(c.is_healthy("mr", min_revision=0))

    def test_read_own_writes_after_a_failover(self):
        c = self.client([self.a.url, self.b.url], read_own_writes=True)
        other = self.client(self.b.url)
        c.register("mr", "http://127.0.0.1:9", ttl_ms=600000)
        c.register("mr", "http://127.0.0.1:10", ttl_ms=600000)
        self.assertEqual(c.written, c.revision)
        self.assertEqual(self.a.stop(), 0)
        with self.assertRaises(dc.DiscoveryError) as cm:
            c.resolve("mr")  # B never saw the writes: not None ("no instance")
        self.assertIn("behind the requested %d;" % c.written, str(cm.exception))
        while other.status().revision < c.written:
            other.register("mr", "http://127.0.0.1:10", ttl_ms=600000)
            other.deregister("mr", "http://127.0.0.1:10")
        other.register("mr", "http://127.0.0.1:10", ttl_ms=600000)
        self.assertEqual(c.resolve("mr"), "http://127.0.0.1:10")
        self.assertEqual(c.url, self.b.url)

    def test_a_server_behind_is_passed_over(self):
        writer = self.client(self.a.url)
        writer.register("mr", "http://127.0.0.1:9", ttl_ms=600000)
        writer.register("mr", "http://127.0.0.1:10", ttl_ms=600000)
        c = self.client([self.b.url, self.a.url])
        self.assertEqual(len(c.get_all("mr", min_revision=writer.revision)), 2)
        self.assertEqual(c.url, self.a.url)


class VersionTest(unittest.TestCase):
    """One version, generated once: the Python client's is the binaries' is project(VERSION)."""

    def binary_version(self, env, name):
        out = subprocess.run(
            [env_path(env), "--version"], capture_output=True, text=True, timeout=LIVENESS, check=True
        ).stdout
        prefix = name + " "
        self.assertTrue(out.startswith(prefix) and out.endswith("\n"), out)
        return out[len(prefix) : -1]

    def test_client_version_is_the_builds(self):
        self.assertRegex(dc.__version__, r"^[0-9]+\.[0-9]+\.[0-9]+$")
        self.assertEqual(dc.__version__, self.binary_version("DISCOVERYD", "discoveryd"))
        self.assertEqual(dc.__version__, self.binary_version("DISCOVERYCTL", "discoveryctl"))

    def test_checkout_fallback_reads_the_same_line(self):
        # The build's discovery_version.py and the fallback read one source.
        self.assertEqual(dc._version_from_cmake(), dc.__version__)


if __name__ == "__main__":
    unittest.main(verbosity=2)
