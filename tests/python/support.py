"""Test support for the Python and interop tests: the real discoveryd as a
child process on loopback, a health endpoint with a settable status, and
bounded waiting. Paths come from the environment that ctest sets
(tests/CMakeLists.txt): DISCOVERYD, DISCOVERYCTL, DISCOVERY_SH, PROTO_DIR.
"""

import http.server
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time

# How many times slower than native this run executes (as tu_slowdown() in
# tests/support/testutil.c): liveness bounds and kept TTLs stretch by it.
SLOWDOWN = min(max(int(os.environ.get("DISCOVERY_TEST_SLOWDOWN") or 1), 1), 100)

# Liveness bounds only: on a healthy machine everything happens in milliseconds.
LIVENESS = 30.0 * SLOWDOWN

# Fast health checks, so health changes come quickly.
FAST_HEALTH = ["--health-interval", "0.1", "--rise", "1", "--fall", "1"]
# ... and fast SYNCs, for tests that use a SYNC to know a subscriber is connected.
FAST = FAST_HEALTH + ["--sync-interval", "0.2"]

# Debian 12's nng 1.5.2 can leak a message when a subscriber disconnects
# while the server publishes (nng issue #1713, fixed upstream), which fails
# the sanitizer build's leak check. So the tests close subscribers while the
# server is quiet (no SYNC due, no change in flight) or after it has stopped.


def env_path(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError("%s is not set (run this test through ctest)" % name)
    return value


def wait_until(predicate, what, timeout=LIVENESS, interval=0.02):
    """Polls predicate until it returns a true value, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


class Daemon:
    """discoveryd on ephemeral loopback ports; stop() (or the context) ends it.

    Its bound URLs come from --ready-fd (docs/ready-fd.md), not from its log.
    """

    def __init__(self, extra_args=(), scheme="tcp"):
        self.log = tempfile.NamedTemporaryFile(prefix="discoveryd-py-", suffix=".log", delete=False)
        ready_r, ready_w = os.pipe()
        args = [env_path("DISCOVERYD"), "--listen", scheme + "://127.0.0.1:0",
                "--publish", scheme + "://127.0.0.1:0", "--data", ":memory:",
                "--admin", "http://127.0.0.1:0",
                "--log-level", "debug", "--ready-fd", str(ready_w)] + list(extra_args)
        try:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=self.log,
                                         pass_fds=(ready_w,))
        finally:
            os.close(ready_w)
        _children.append(self.proc)
        try:
            lines = self._await_ready(ready_r)
        except BaseException:
            self.stop()
            raise
        finally:
            os.close(ready_r)
        self.url = next(line.split(" ", 1)[1] for line in lines if line.startswith("listen "))
        self.pub_url = next(line.split(" ", 1)[1] for line in lines if line.startswith("publish "))
        self.admin_url = next((line.split(" ", 1)[1] for line in lines
                               if line.startswith("admin ")), None)

    def _await_ready(self, fd):
        """The lines up to "ready"; fails on EOF before it or after LIVENESS."""
        data = b""
        deadline = time.monotonic() + LIVENESS
        while b"ready\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("discoveryd did not report ready:\n" + self.log_text())
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.proc.wait(LIVENESS)
                    raise AssertionError("discoveryd exited with %s:\n%s" % (
                        self.proc.returncode, self.log_text()))
                data += chunk
        return data.decode().splitlines()

    def log_text(self):
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self):
        """SIGTERM, then SIGKILL after 10 s; returns the exit status."""
        rc = stop_process(self.proc)
        self.log.close()
        return rc

    def remove_log(self):
        try:
            os.unlink(self.log.name)
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        if exc[0] is None:
            self.remove_log()
        else:
            sys.stderr.write("---- discoveryd log ----\n%s----\n" % self.log_text())


# Every child a test started, so that a failing test still leaves none behind.
_children = []


def stop_process(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def spawn(args, **kw):
    """subprocess.Popen, remembered for kill_children."""
    proc = subprocess.Popen(args, **kw)
    _children.append(proc)
    return proc


def kill_children():
    for p in _children:
        if p.poll() is None:
            p.kill()
            p.wait()


def _on_term(signum, frame):
    # ctest's timeout sends SIGTERM/SIGKILL to the test process only: end the
    # children first, then exit with the conventional status.
    kill_children()
    os._exit(128 + signum)


signal.signal(signal.SIGTERM, _on_term)


class HealthServer:
    """A real HTTP server on 127.0.0.1, answering every GET with self.status."""

    def __init__(self, status=200):
        self.status = status
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                body = b"ok\n" if 200 <= owner.status < 300 else b"failing\n"
                self.send_response(owner.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.endpoint = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def next_event(watch, predicate, what, timeout=LIVENESS):
    """Reads watch until an event satisfies predicate; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out waiting for " + what)
        ev = watch.next(left)
        if ev is not None and predicate(ev):
            return ev


def connect_watch(client, watch, service, what="the watch to connect"):
    """Returns once watch (subscribed to service) receives service's events.

    A subscriber connects in the background, so re-register a TTL probe
    instance of service (no health checks, so no other events) with a new
    weight each time until one of its events arrives; then remove the probe
    and consume its DEREGISTERED, so the watch is connected and drained.
    """
    from discovery_client import pb

    probe = "tcp://127.0.0.1:1"  # a TTL instance: never dialled
    deadline = time.monotonic() + LIVENESS
    weight = 0
    while True:
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        weight += 1
        client.register(service, probe, ttl_ms=60000 * SLOWDOWN, weight=weight)
        ev = watch.next(0.1)
        if ev is not None and ev.instance.endpoint == probe:
            break
    client.deregister(service, probe)
    next_event(watch, lambda e: e.instance.endpoint == probe and e.type == pb.EVENT_DEREGISTERED,
               "the probe's DEREGISTERED")
