"""The asyncio client, the original interface, failover lists, token files
and TLS in the Python client, against the real discoveryd.

Run by ctest like test_client.py (tests/CMakeLists.txt sets the paths).
"""

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import discovery_client as dc
from discovery_client import pb
from discovery_client.aio import AsyncClient
from discovery_client.compat import RemoteServiceDiscovery
from support import FAST, FAST_HEALTH, LIVENESS, Daemon, HealthServer, spawn, stop_process

OPENSSL = "/usr/bin/openssl"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, LIVENESS * 2))


class DaemonCase(unittest.TestCase):
    daemon_args = FAST_HEALTH

    def setUp(self):
        self.daemon = Daemon(self.daemon_args)
        self.addCleanup(self.stop_daemon)

    def stop_daemon(self):
        rc = self.daemon.stop()
        if rc != 0:
            sys.stderr.write(self.daemon.log_text())
        self.assertEqual(rc, 0, "discoveryd exit status")
        self.daemon.remove_log()

    def aclient(self, **kw):
        kw.setdefault("timeout", 5)
        return AsyncClient(self.daemon.url, publish_url=self.daemon.pub_url, **kw)


class AsyncClientTest(DaemonCase):
    daemon_args = FAST

    def test_calls_are_coroutines_with_the_sync_results(self):
        async def main():
            async with self.aclient() as c:
                inst = await c.register("Aio_Svc", "http://127.0.0.1:9", ttl_ms=60000, weight=2)
                self.assertIsInstance(inst, pb.Instance)
                self.assertEqual(inst.service, "aio-svc")
                self.assertEqual(await c.resolve("aio-svc"), "http://127.0.0.1:9")
                self.assertIsNone(await c.resolve("nothing-here"))
                self.assertFalse(await c.is_healthy("aio-svc"))
                await c.heartbeat("aio-svc", "http://127.0.0.1:9")
                self.assertTrue(await c.is_healthy("aio-svc"))
                self.assertEqual([i.endpoint for i in await c.get_all()], ["http://127.0.0.1:9"])
                with self.assertRaises(dc.DiscoveryError) as cm:
                    await c.health("nothing-here")
                self.assertEqual(cm.exception.status, pb.STATUS_NOT_FOUND)
                self.assertEqual(await c.deregister("aio-svc"), 1)
        run(main())

    def test_concurrent_awaits_are_not_serialised(self):
        # A liveness property, compared within one run: through a relay that
        # holds each message 20 ms (so a call takes about 40 ms), 100 calls
        # awaited together on one loop take a fraction of the time of the
        # same 100 awaited one after another.
        port = self.daemon.url.rsplit(":", 1)[1]
        proxy = spawn([sys.executable, os.path.join(os.path.dirname(__file__), "delay_proxy.py"),
                       port, "0.02"], stdout=subprocess.PIPE)
        self.addCleanup(stop_process, proxy)
        slow_url = "tcp://127.0.0.1:%d" % int(proxy.stdout.readline())

        async def main():
            async with AsyncClient(slow_url, timeout=LIVENESS, max_workers=100) as c:
                await c.register("conc", "http://127.0.0.1:9", ttl_ms=60000)
                t = time.monotonic()
                for _ in range(100):
                    self.assertEqual(await c.resolve("conc"), "http://127.0.0.1:9")
                seq = time.monotonic() - t
                t = time.monotonic()
                got = await asyncio.gather(*(c.resolve("conc") for _ in range(100)))
                conc = time.monotonic() - t
                self.assertEqual(got, ["http://127.0.0.1:9"] * 100)
                self.assertLess(conc, 0.5 * seq, "100 concurrent calls took %.3f s, "
                                "100 sequential %.3f s" % (conc, seq))
        run(main())

    def test_the_loop_keeps_running_during_a_call(self):
        # A call to a server that never answers must not stop other tasks.
        async def main():
            async with AsyncClient("tcp://127.0.0.1:%d" % self.held_port(), timeout=1) as dead:
                ticks = 0

                async def ticker():
                    nonlocal ticks
                    while True:
                        ticks += 1
                        await asyncio.sleep(0.01)

                t = asyncio.create_task(ticker())
                with self.assertRaises(dc.TransportError):
                    await dead.resolve("x")
                t.cancel()
                self.assertGreater(ticks, 5)
        run(main())

    def held_port(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        self.addCleanup(s.close)
        return s.getsockname()[1]

    def test_async_watch_and_wait_for_services(self):
        async def main():
            async with self.aclient() as c:
                async with c.watch(["watched"], include_sync=True) as w:
                    # A SYNC arrives once the subscriber is connected.
                    ev = await w.next(LIVENESS)
                    self.assertIsNotNone(ev)
                    waiter = asyncio.create_task(c.wait_for_services(["watched"], LIVENESS))
                    await c.register("watched", "http://127.0.0.1:9", ttl_ms=60000)
                    await c.heartbeat("watched", "http://127.0.0.1:9")
                    self.assertTrue(await waiter)
                    seen = []
                    async for ev in w:
                        if ev.type != pb.EVENT_SYNC:
                            seen.append(ev.type)
                        if pb.EVENT_HEALTH_CHANGED in seen:
                            break
                    self.assertEqual(seen[0], pb.EVENT_REGISTERED)
                with self.assertRaises(dc.ServicesNotReady) as cm:
                    await c.wait_for_services(["never"], 0.5)
                self.assertEqual(cm.exception.missing, ["never"])
        run(main())


# The original interface's application, as docs/clients.md shows it with
# FastAPI's start-up and shutdown handlers, here as plain asyncio.
async def original_app(discovery, endpoint):
    await discovery.initialize()                       # @app.on_event("startup")
    try:
        await discovery.register("memory", endpoint)
        found = await discovery.resolve("memory")
        missing = await discovery.resolve("no-such-service")
        all_ = await discovery.get_all()
        healthy = await discovery.is_healthy("memory")
        await discovery.deregister("memory")
        gone = await discovery.resolve("memory")
        return found, missing, all_, healthy, gone
    finally:
        await discovery.shutdown()                     # @app.on_event("shutdown")


class MinRevisionTest(DaemonCase):
    daemon_args = ["--min-revision-wait", "0.2"]

    def test_min_revision_and_read_own_writes(self):
        async def main():
            async with self.aclient(read_own_writes=True, max_workers=4) as c:
                await c.register("mr", "http://127.0.0.1:9", ttl_ms=600000)
                written = c.written
                self.assertGreater(written, 0)
                # Every worker thread's call carries the one written revision.
                got = await asyncio.gather(*(c.resolve("mr") for _ in range(8)))
                self.assertEqual(got, ["http://127.0.0.1:9"] * 8)
                with self.assertRaises(dc.DiscoveryError) as cm:
                    await c.resolve("mr", min_revision=written + 3)
                self.assertEqual(cm.exception.status, pb.STATUS_UNAVAILABLE)
                self.assertIn("behind the requested %d" % (written + 3), str(cm.exception))
                c.min_revision = written + 3
                with self.assertRaises(dc.DiscoveryError):
                    await c.get_all()
                self.assertEqual(len(await c.get_all(min_revision=written)), 1)

        run(main())


class CompatTest(DaemonCase):
    def test_the_original_interface(self):
        with HealthServer(200) as http:
            d = RemoteServiceDiscovery(self.daemon.url, publish_url=self.daemon.pub_url)

            async def main():
                with self.assertRaises(RuntimeError):
                    await d.resolve("memory")
                return await original_app(d, http.endpoint)

            found, missing, all_, healthy, gone = run(main())
        self.assertEqual(found, http.endpoint)
        self.assertIsNone(missing)
        self.assertEqual(all_, {"memory": http.endpoint})
        self.assertIsInstance(healthy, bool)
        self.assertIsNone(gone)

    def test_is_healthy_follows_the_server_checks(self):
        with HealthServer(200) as http:
            async def main():
                d = RemoteServiceDiscovery(self.daemon.url)
                await d.initialize()
                try:
                    await d.register("svc", http.endpoint)
                    deadline = time.monotonic() + LIVENESS
                    while not await d.is_healthy("svc"):
                        self.assertLess(time.monotonic(), deadline, "svc never became healthy")
                        await asyncio.sleep(0.05)
                    self.assertFalse(await d.is_healthy("unknown"))
                    await d.deregister("svc")
                finally:
                    await d.shutdown()
            run(main())

    def test_initialize_fails_without_a_server(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.addCleanup(s.close)
        d = RemoteServiceDiscovery("tcp://127.0.0.1:%d" % s.getsockname()[1], timeout=0.5)
        with self.assertRaises(dc.TransportError):
            run(d.initialize())


class FailoverTest(DaemonCase):
    def test_a_dead_server_then_a_live_one(self):
        held = socket.socket()
        held.bind(("127.0.0.1", 0))  # bound and held, never listening
        self.addCleanup(held.close)
        dead = "tcp://127.0.0.1:%d" % held.getsockname()[1]
        with dc.Client([dead, self.daemon.url], timeout=1) as c:
            self.assertEqual(c.urls, [dead, self.daemon.url])
            c.register("fo", "http://127.0.0.1:9", ttl_ms=60000)
            self.assertEqual(c.url, self.daemon.url)  # it moved on, and stays
            self.assertEqual(c.resolve("fo"), "http://127.0.0.1:9")

        async def main():
            async with AsyncClient([dead, self.daemon.url], timeout=1) as a:
                return await a.resolve("fo")
        self.assertEqual(run(main()), "http://127.0.0.1:9")
        with self.assertRaises(ValueError):
            dc.Client([])


class TokenTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def file(self, data, mode=0o600):
        self.n = getattr(self, "n", 0) + 1
        path = os.path.join(self.dir.name, "token%d" % self.n)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        return path

    def test_the_token_file_rules(self):
        self.assertEqual(dc.read_token_file(self.file(b"s3cret\n")), "s3cret")
        self.assertEqual(dc.read_token_file(self.file(b"s3cret\r\n")), "s3cret")
        self.assertEqual(dc.read_token_file(self.file(b"a" * 4095)), "a" * 4095)
        cases = [(self.file(b"s3cret", 0o640), "readable by group or others (mode 640)"),
                 (self.file(b"s3cret", 0o604), "readable by group or others"),
                 (self.file(b"a" * 4096), "too large"),
                 (self.file(b"a\0b"), "NUL"),
                 (self.file(b"\n"), "empty"),
                 (self.dir.name, "not a regular file"),
                 (os.path.join(self.dir.name, "missing"), "cannot read")]
        for path, why in cases:
            with self.assertRaises(ValueError) as cm:
                dc.read_token_file(path)
            self.assertIn(why, str(cm.exception))
            with self.assertRaises(ValueError):
                dc.Client("tcp://127.0.0.1:1", token_file=path)

    def test_token_sources(self):
        path = self.file(b"from-file\n")
        old = os.environ.pop(dc.TOKEN_ENV, None)
        try:
            with dc.Client("tcp://127.0.0.1:1", token_file=path) as c:
                self.assertEqual(c.token, "from-file")
            with dc.Client("tcp://127.0.0.1:1") as c:
                self.assertIsNone(c.token)
            os.environ[dc.TOKEN_ENV] = "from-env"
            with dc.Client("tcp://127.0.0.1:1") as c:
                self.assertEqual(c.token, "from-env")
            with dc.Client("tcp://127.0.0.1:1", token="in-code") as c:
                self.assertEqual(c.token, "in-code")
            with self.assertRaises(ValueError):
                dc.Client("tcp://127.0.0.1:1", token="x", token_file=path)
        finally:
            os.environ.pop(dc.TOKEN_ENV, None)
            if old is not None:
                os.environ[dc.TOKEN_ENV] = old

    def test_the_token_authenticates(self):
        path = self.file(b"right-token\n")
        with Daemon(["--token-file", path]) as d:
            with dc.Client(d.url, timeout=5, token_file=path) as c:
                c.register("authd", "http://127.0.0.1:9", ttl_ms=60000)
            with dc.Client(d.url, timeout=5, token="wrong") as c:
                with self.assertRaises(dc.DiscoveryError) as cm:
                    c.register("authd", "http://127.0.0.1:9", ttl_ms=60000)
                self.assertEqual(cm.exception.status, pb.STATUS_PERMISSION_DENIED)
            # discoveryctl: a missing token names the option and the variable, not the
            # protobuf field, and authentication failures exit 6 (EXIT_AUTH).
            env = {k: v for k, v in os.environ.items() if k != dc.TOKEN_ENV}
            ctl = [os.environ["DISCOVERYCTL"], "--server", d.url]
            out = subprocess.run(ctl + ["register", "authd", "http://127.0.0.1:9"], env=env,
                                 capture_output=True, text=True)
            self.assertEqual(out.returncode, 6, out.stderr)
            self.assertIn("--token-file FILE", out.stderr)
            self.assertIn("$SERVICE_DISCOVERY_API_KEY", out.stderr)
            self.assertNotIn("Request.auth_token", out.stderr)
            env[dc.TOKEN_ENV] = "wrong"
            out = subprocess.run(ctl + ["register", "authd", "http://127.0.0.1:9"], env=env,
                                 capture_output=True, text=True)
            self.assertEqual(out.returncode, 6, out.stderr)
            self.assertIn("did not accept the auth token from $SERVICE_DISCOVERY_API_KEY",
                          out.stderr)
            out = subprocess.run(ctl + ["--token-file", path, "deregister", "authd"], env=env,
                                 capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)

    def test_no_client_takes_a_token_on_the_command_line(self):
        # discoveryctl and the shell script refuse --token as a usage error; Python
        # has no command line (token= is code, token_file= a file).
        cases = [[os.environ["DISCOVERYCTL"], "--token", "s3cret", "list"],
                 [os.environ["DISCOVERYCTL"], "--token=s3cret", "list"],
                 ["sh", os.environ["DISCOVERY_SH"], "--token", "s3cret", "list"],
                 ["sh", os.environ["DISCOVERY_SH"], "--token=s3cret", "list"]]
        for argv in cases:
            out = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            self.assertEqual(out.returncode, 2, "%s: %s" % (argv, out.stderr))


def openssl(*args):
    subprocess.run([OPENSSL] + list(args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


class TLSTest(unittest.TestCase):
    """A tls+tcp discoveryd with throwaway certificates, as tls_test.c makes them."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.p = staticmethod(lambda name: os.path.join(d, name))
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for ca in ("ca", "other"):
            openssl("req", "-x509", *ec, "-keyout", cls.p(ca + ".key"), "-out", cls.p(ca + ".crt"),
                    "-days", "2", "-subj", "/CN=" + ca)
        for leaf, san in (("server", "DNS:localhost"), ("client", "DNS:client")):
            with open(cls.p(leaf + ".ext"), "w") as f:
                f.write("subjectAltName=%s\n" % san)
            openssl("req", "-new", *ec, "-keyout", cls.p(leaf + ".key"), "-out",
                    cls.p(leaf + ".csr"), "-subj", "/CN=" + leaf)
            openssl("x509", "-req", "-in", cls.p(leaf + ".csr"), "-CA", cls.p("ca.crt"), "-CAkey",
                    cls.p("ca.key"), "-CAcreateserial", "-out", cls.p(leaf + ".crt"), "-days", "2",
                    "-extfile", cls.p(leaf + ".ext"))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_calls_and_events_over_tls_with_client_certificates(self):
        p = self.p
        args = FAST + ["--tls-cert", p("server.crt"), "--tls-key", p("server.key"),
                       "--tls-ca", p("ca.crt")]
        with Daemon(args, scheme="tls+tcp") as d:
            self.assertTrue(d.url.startswith("tls+tcp://127.0.0.1:"))
            # mbedTLS matches DNS names only: the certificate names localhost.
            tls = dc.TLSOptions(ca_file=p("ca.crt"), cert_file=p("client.crt"),
                                key_file=p("client.key"), server_name="localhost")
            with dc.Client(d.url, timeout=5, publish_url=d.pub_url, tls=tls) as c:
                with c.watch(include_sync=True) as w:
                    self.assertIsNotNone(w.next(LIVENESS), "no SYNC over TLS")
                c.register("tls-svc", "http://127.0.0.1:9", ttl_ms=60000)
                self.assertEqual(c.resolve("tls-svc"), "http://127.0.0.1:9")

            async def main():
                async with AsyncClient(d.url, timeout=5, tls=tls) as a:
                    return await a.resolve("tls-svc")
            self.assertEqual(run(main()), "http://127.0.0.1:9")

            # A CA that did not sign the server: no answer, only a timeout.
            bad = dc.TLSOptions(ca_file=p("other.crt"), cert_file=p("client.crt"),
                                key_file=p("client.key"), server_name="localhost")
            with dc.Client(d.url, timeout=0.5, tls=bad) as c:
                with self.assertRaises(dc.TransportError):
                    c.resolve("tls-svc")
            # No client certificate, where the server requires one.
            nocert = dc.TLSOptions(ca_file=p("ca.crt"), server_name="localhost")
            with dc.Client(d.url, timeout=0.5, tls=nocert) as c:
                with self.assertRaises(dc.TransportError):
                    c.resolve("tls-svc")

    def test_discoveryctl_hints_at_the_server_name(self):
        # TLS to an IP address fails the handshake (mbedTLS matches DNS names
        # only): discoveryctl says to use --tls-server-name.
        p = self.p
        args = ["--tls-cert", p("server.crt"), "--tls-key", p("server.key")]
        with Daemon(args, scheme="tls+tcp") as d:
            out = subprocess.run([os.environ["DISCOVERYCTL"], "--server", d.url, "--tls-ca",
                                  p("ca.crt"), "--timeout", "5", "resolve", "x"],
                                 capture_output=True, text=True)
            self.assertEqual(out.returncode, 3, out.stderr)
            self.assertIn("TLS handshake failed", out.stderr)
            self.assertIn("use --tls-server-name NAME", out.stderr)
            out = subprocess.run([os.environ["DISCOVERYCTL"], "--server", d.url, "--tls-ca",
                                  p("ca.crt"), "--tls-server-name", "localhost", "--timeout", "5",
                                  "resolve", "x"], capture_output=True, text=True)
            self.assertEqual(out.returncode, 1, out.stderr)  # connected: x is not found
            self.assertNotIn("--tls-server-name", out.stderr)

    def test_bad_options_fail_the_constructor(self):
        p = self.p
        url = "tls+tcp://127.0.0.1:1"
        with self.assertRaises(ValueError):
            dc.Client(url)  # a TLS URL needs options
        with self.assertRaises(ValueError):
            dc.Client(url, tls=dc.TLSOptions(ca_file=None))
        with self.assertRaises(ValueError):
            dc.Client(url, tls=dc.TLSOptions(ca_file=p("ca.crt"), cert_file=p("client.crt")))
        with self.assertRaises(ValueError) as cm:
            dc.Client(url, tls=dc.TLSOptions(ca_file=p("missing.crt")))
        self.assertIn("missing.crt", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
