"""The dashboard (GET / on the admin endpoint) in a real browser.

Debian's chromium runs headless against the real discoveryd; the test drives
it over the DevTools protocol (python3-websocket): it loads the page once,
registers instances against a real HTTP health target, makes the target fail,
and watches the same page (never reloaded) show the change that its blocking
queries bring. It also checks that registry text stays text, that the filter
works, that a 401 shows as an HTTP error, and takes a screenshot
(DASHBOARD_SCREENSHOT names the file; docs/images/dashboard.png is one).

Exits 77 (ctest SKIP_RETURN_CODE) only when chromium is not installed.
"""

import base64
import itertools
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest
import urllib.request

import discovery_client as dc
from support import FAST_HEALTH, LIVENESS, Daemon, HealthServer, spawn, stop_process, wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    print("SKIP: chromium is not installed (scripts/deps.sh test installs Debian's chromium)")
    sys.exit(77)

import websocket  # noqa: E402 (Debian: python3-websocket, in scripts/deps.sh test)

HOSTILE = '<img src=x onerror="window.pwned=1">'


class Browser:
    """Headless chromium with a fresh profile, driven over the DevTools protocol."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="discovery-chromium-")
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking",
                "--user-data-dir=" + self.profile, "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0", "--window-size=1280,720", "about:blank"]
        self.log = open(os.path.join(self.profile, "chromium.log"), "wb")
        self.proc = spawn(args, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        self.ws = None
        self.ids = itertools.count(1)
        try:
            port_file = os.path.join(self.profile, "DevToolsActivePort")
            port = wait_until(lambda: self._read_port(port_file), "chromium's DevTools port")
            targets = wait_until(lambda: self._pages(port), "chromium's first page")
            self.ws = websocket.create_connection(targets[0]["webSocketDebuggerUrl"],
                                                  timeout=LIVENESS, suppress_origin=True)
            self.call("Page.enable")
            self.call("Runtime.enable")
        except BaseException:
            self.log.flush()
            with open(self.log.name, encoding="utf-8", errors="replace") as f:
                sys.stderr.write("---- chromium log ----\n%s----\n" % f.read())
            self.close()
            raise

    @staticmethod
    def _read_port(path):
        try:
            with open(path, encoding="ascii") as f:
                line = f.readline().strip()
            return int(line) if line else None
        except (OSError, ValueError):
            return None

    @staticmethod
    def _pages(port):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=5) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            return pages or None
        except OSError:
            return None

    def call(self, method, **params):
        """One DevTools command; its result (events in between are skipped)."""
        mid = next(self.ids)
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise AssertionError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def eval(self, expression):
        """The value of a JavaScript expression in the page (JSON-serialisable)."""
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise AssertionError("page script failed: %s" % r["exceptionDetails"])
        return r["result"].get("value")

    def open(self, url):
        self.call("Page.navigate", url=url)
        wait_until(lambda: self.eval("document.readyState") == "complete", "the page to load")

    def rows(self):
        """{endpoint: (health word, row text)} as the page shows it now."""
        got = self.eval("JSON.stringify(Array.from(document.querySelectorAll("
                        "'tr[data-endpoint]')).map(r => [r.getAttribute('data-endpoint'),"
                        " r.getAttribute('data-health'), r.textContent]))")
        return {e: (h, t) for e, h, t in json.loads(got or "[]")}

    def text(self, element_id):
        return self.eval("(document.getElementById(%s) || {}).textContent" % json.dumps(element_id))

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            if self.ws is not None:
                self.ws.close()
        finally:
            stop_process(self.proc)
            self.log.close()
            shutil.rmtree(self.profile, ignore_errors=True)


class DashboardTest(unittest.TestCase):

    def setUp(self):
        self.browser = Browser()
        self.addCleanup(self.browser.close)

    def start_daemon(self, extra=()):
        d = Daemon(list(FAST_HEALTH) + ["--admin", "http://127.0.0.1:0"] + list(extra))
        self.addCleanup(d.remove_log)
        self.addCleanup(d.stop)
        return d

    def test_page_follows_health_changes_live(self):
        d = self.start_daemon()
        url = d.admin_url
        with urllib.request.urlopen(url + "/", timeout=LIVENESS) as r:
            csp = r.headers.get("Content-Security-Policy", "")
            self.assertIn("default-src 'none'", csp)
            # Inline code runs by hash only: the page's own script and style.
            self.assertNotIn("unsafe-inline", csp)
            self.assertRegex(csp, r"script-src 'sha256-[A-Za-z0-9+/]{43}='")
            self.assertEqual(r.headers.get("X-Content-Type-Options"), "nosniff")
            self.assertTrue(r.headers.get("Content-Type", "").startswith("text/html"))

        b = self.browser
        b.open(url + "/")
        b.eval("window.loadedOnce = 'yes'")  # gone if the page were reloaded
        wait_until(lambda: (b.text("status") or "").startswith("live"), "the first catalog")
        self.assertEqual(b.rows(), {})

        target = HealthServer(200)
        self.addCleanup(target.close)
        spare = HealthServer(200)
        self.addCleanup(spare.close)
        c = dc.Client(d.url, timeout=LIVENESS)
        self.addCleanup(c.close)
        c.register("payments", target.endpoint, health_path="/health", weight=10,
                   metadata={"zone": "eu-1", "note": HOSTILE})
        c.register("payments", spare.endpoint, health_path="/health", weight=5,
                   metadata={"zone": "eu-2"})
        c.register("search", "tcp://127.0.0.1:1", ttl_ms=600000, weight=1,
                   metadata={"version": "2.4.1"})

        wait_until(lambda: b.rows().get(target.endpoint, ("",))[0] == "healthy",
                   "the page to show the target healthy")
        health, text = b.rows()[target.endpoint]
        self.assertIn("healthy", text)
        self.assertIn("10", text)
        self.assertIn("zone=eu-1", text)
        # Registry text is shown as text: the markup is visible, nothing ran.
        self.assertIn(HOSTILE, text)
        self.assertEqual(b.eval("document.querySelectorAll('main img').length"), 0)
        self.assertIsNone(b.eval("window.pwned"))

        target.status = 503
        wait_until(lambda: b.rows().get(target.endpoint, ("",))[0] == "unhealthy",
                   "the page to show the target unhealthy")
        wait_until(lambda: "503" in b.rows()[target.endpoint][1],
                   "the last error to name the failing status")
        self.assertEqual(b.eval("window.loadedOnce"), "yes", "the page was reloaded")
        wait_until(lambda: b.text("count-unhealthy") == "unhealthy 1", "the unhealthy count")
        revision = int(b.text("revision"))
        self.assertGreater(revision, 0)

        shot = os.environ.get("DASHBOARD_SCREENSHOT")
        if shot:
            b.screenshot(shot)
        # The filter hides what does not match, and shows it again when cleared.
        b.eval("(f => { f.value = 'search'; f.dispatchEvent(new Event('input')); })"
               "(document.getElementById('filter'))")
        self.assertEqual(set(b.rows()), {"tcp://127.0.0.1:1"})
        b.eval("(f => { f.value = 'eu-2'; f.dispatchEvent(new Event('input')); })"
               "(document.getElementById('filter'))")
        self.assertEqual(set(b.rows()), {spare.endpoint})
        b.eval("(f => { f.value = ''; f.dispatchEvent(new Event('input')); })"
               "(document.getElementById('filter'))")
        self.assertEqual(len(b.rows()), 3)

        c.deregister("search")
        wait_until(lambda: "tcp://127.0.0.1:1" not in b.rows(), "the page to drop a service")

    def test_page_shows_http_error_when_reads_need_a_token(self):
        tmp = tempfile.mkdtemp(prefix="discovery-dash-")
        self.addCleanup(shutil.rmtree, tmp, True)
        token = os.path.join(tmp, "token")
        with open(token, "w", encoding="ascii") as f:
            f.write("dashboard-secret\n")
        os.chmod(token, stat.S_IRUSR | stat.S_IWUSR)
        d = self.start_daemon(["--token-file", token, "--auth-reads"])
        b = self.browser
        b.open(d.admin_url + "/")
        status = wait_until(lambda: (lambda s: s if "HTTP 401" in s else None)(
            b.text("status") or ""), "the page to show the HTTP error")
        self.assertIn("Authorization", status)
        self.assertEqual(b.eval("document.getElementById('status').className"), "error")


if __name__ == "__main__":
    unittest.main(verbosity=2)
