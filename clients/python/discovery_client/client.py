"""The synchronous Client: one REQ socket per server URL, one generic call path."""

import threading
import time

from discovery_client import _nng
from discovery_client._nng import NNG_DURATION_INFINITE
from discovery_client._nng import set_ms as _set_ms
from discovery_client._pb import pb
from discovery_client.errors import (NNG_ECLOSED, NNG_ETIMEDOUT, DiscoveryError,
                                     ServicesNotReady, TransportError)
from discovery_client.tokenfile import resolve_token
from discovery_client.watch import DEFAULT_PUBLISH_URL, Watch, normalize_name

DEFAULT_URL = "tcp://127.0.0.1:7700"
_WRITES = ("register", "deregister", "heartbeat")  # their revisions count for read_own_writes


class Client:
    """A discoveryd client: a REQ socket on url (and, for watches, publish_url).

    url is one URL or a list of them (failover): calls go to the current
    server and move on to the next one when it does not answer in time or
    answers UNAVAILABLE, retrying the call there (so a call may run twice:
    every call but heartbeat is idempotent, and a repeated heartbeat is
    harmless). timeout (seconds) bounds each attempt.

    The token is token=, else the one in token_file (a file only its owner
    can read), else $SERVICE_DISCOVERY_API_KEY (docs/clients.md). tls
    (TLSOptions: ca_file, cert_file, key_file, server_name) is for
    tls+tcp:// URLs.

    Reading your own writes across servers (docs/protocol.md): every call
    takes min_revision= (default: the min_revision attribute, 0), the
    lowest registry revision a server may answer it at; a server behind
    waits briefly, then answers UNAVAILABLE and the call moves on to the
    next server (resolve too). With read_own_writes=True every call also
    carries the highest revision this client's register, deregister and
    heartbeat calls were answered at (the written attribute).

    The sockets dial in the background and redial after a server restart,
    so a client opens while the server is down and its calls then raise
    TransportError (timed_out) until it is up. REQ resend is off: nng would
    otherwise send a slow request again after 60 s and run it twice.
    """

    def __init__(self, url=DEFAULT_URL, timeout=5.0, token=None, publish_url=DEFAULT_PUBLISH_URL,
                 token_file=None, tls=None, read_own_writes=False):
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise ValueError("no server URL")
        self.urls = urls
        self.publish_url = publish_url
        self.timeout = timeout
        self.token = resolve_token(token, token_file)
        self.tls = tls
        #: The registry revision carried by the last reply (failed calls included).
        self.revision = 0
        #: Every call's min_revision unless the call gives its own.
        self.min_revision = 0
        self.read_own_writes = read_own_writes
        #: The highest revision a write of this client was answered at.
        self.written = 0
        self._lock = threading.Lock()
        self._closed = False
        self._current = 0
        self._socks = []
        try:
            for u in urls:
                sock = _nng.open_socket(_nng.lib.nng_req0_open, "nng_req0_open")
                self._socks.append(sock)
                _set_ms(sock, b"req:resend-time", NNG_DURATION_INFINITE)
                _nng.dial(sock, u, tls)
        except BaseException:
            self.close()
            raise

    @property
    def url(self):
        """The server URL calls go to now (the first of the list until a failover)."""
        return self.urls[self._current]

    @staticmethod
    def _ms(seconds):
        return max(1, int(seconds * 1000))

    def close(self):
        with self._lock:
            if not self._closed:
                self._closed = True
                for sock in self._socks:
                    _nng.lib.nng_close(sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_socks", None) and _nng is not None:
            self.close()

    def _exchange(self, i, data, timeout):
        """One request and its reply on server i; raises TransportError."""
        sock = self._socks[i]
        try:
            _set_ms(sock, b"send-timeout", self._ms(timeout))
            _set_ms(sock, b"recv-timeout", self._ms(timeout))
            _nng.check("send", _nng.lib.nng_send(sock, data, len(data), 0))
            return _nng.recv(sock)
        except TransportError as exc:
            if exc.timed_out:
                msg = "%s: no answer within %g s" % (self.urls[i], timeout)
            else:
                msg = "%s: %s" % (self.urls[i], exc)
            raise TransportError(msg, exc.nng_error) from None

    def _min_revision(self, min_revision):
        want = self.min_revision if min_revision is None else min_revision
        return max(want, self.written) if self.read_own_writes else want

    def call(self, field, message, timeout=None, min_revision=None):
        """Sends Request{field: message} and returns the matching result message.

        The one generic path every call takes. Raises DiscoveryError for a
        status other than OK, TransportError when no valid reply came within
        timeout (default: the client's) from any server.
        """
        req = pb.Request(**{field: message})
        if self.token:
            req.auth_token = self.token
        want = self._min_revision(min_revision)
        if want:
            req.min_revision = want
        data = req.SerializeToString()
        timeout = timeout or self.timeout
        with self._lock:
            if self._closed:
                raise TransportError("client closed", NNG_ECLOSED)
            n = len(self._socks)
            for attempt in range(n):
                i = (self._current + attempt) % n
                try:
                    reply = self._exchange(i, data, timeout)
                except TransportError as exc:
                    if attempt + 1 < n and exc.nng_error != NNG_ECLOSED:
                        continue
                    raise
                try:
                    rep = pb.Response.FromString(reply)
                except Exception as exc:
                    raise TransportError("undecodable reply: %s" % exc) from exc
                # Resolve's UNAVAILABLE is an answer (no healthy instance), unless the
                # server is below the min_revision asked for.
                if (rep.status == pb.STATUS_UNAVAILABLE and attempt + 1 < n
                        and (field != "resolve" or rep.revision < want)):
                    continue
                self._current = i
                break
        self.revision = rep.revision
        if rep.status != pb.STATUS_OK:
            raise DiscoveryError(rep.status, rep.message)
        if rep.WhichOneof("result") != field:
            raise TransportError("reply carries %s, not %s" % (rep.WhichOneof("result"), field))
        if field in _WRITES:
            self.written = max(self.written, rep.revision)
        return getattr(rep, field)

    # ---- the calls ----

    def register(self, service, endpoint, metadata=None, health_path=None, ttl_ms=0, weight=0,
                 min_revision=None):
        """Registers (or updates) an instance; returns the stored discovery.v1.Instance."""
        msg = pb.RegisterRequest(
            service=service,
            endpoint=endpoint,
            metadata=metadata or {},
            health_path=health_path or "",
            ttl_ms=ttl_ms,
            weight=weight,
        )
        return self.call("register", msg, min_revision=min_revision).instance

    def resolve_instance(self, service, healthy_only=False, min_revision=None):
        """The Instance the server picks; raises DiscoveryError (NOT_FOUND, UNAVAILABLE)."""
        msg = pb.ResolveRequest(service=service, healthy_only=healthy_only)
        return self.call("resolve", msg, min_revision=min_revision).instance

    def resolve(self, service, healthy_only=False, min_revision=None):
        """The endpoint of one instance, or None when there is none to use.

        None means the service is not registered (NOT_FOUND) or, with
        healthy_only, that none of its instances is healthy (UNAVAILABLE);
        a server behind min_revision raises UNAVAILABLE instead.
        Without healthy_only a registered service always resolves; the
        instance may be unhealthy (resolve_instance tells its health).
        """
        try:
            return self.resolve_instance(service, healthy_only, min_revision).endpoint
        except DiscoveryError as exc:
            behind = self.revision < self._min_revision(min_revision)  # not "no instance"
            if exc.status in (pb.STATUS_NOT_FOUND, pb.STATUS_UNAVAILABLE) and not behind:
                return None
            raise

    def deregister(self, service, endpoint=None, min_revision=None):
        """Removes one instance, or every instance when endpoint is None; returns how many."""
        msg = pb.DeregisterRequest(service=service, endpoint=endpoint or "")
        return self.call("deregister", msg, min_revision=min_revision).removed

    def health(self, service, endpoint=None, min_revision=None):
        """The IsHealthyResponse (healthy, state); raises DiscoveryError NOT_FOUND."""
        msg = pb.IsHealthyRequest(service=service, endpoint=endpoint or "")
        return self.call("is_healthy", msg, min_revision=min_revision)

    def is_healthy(self, service, endpoint=None, min_revision=None):
        """True when the instance (or, without endpoint, any instance) is healthy.

        An unknown service or instance is False; health() raises instead.
        """
        try:
            return self.health(service, endpoint, min_revision).healthy
        except DiscoveryError as exc:
            if exc.status == pb.STATUS_NOT_FOUND:
                return False
            raise

    def get_all(self, service=None, min_revision=None):
        """Every instance (of service, if given) sorted by (service, endpoint).

        An unknown service gives []. self.revision is the revision the list reflects.
        """
        msg = pb.GetAllRequest(service=service or "")
        return list(self.call("get_all", msg, min_revision=min_revision).instances)

    def heartbeat(self, service, endpoint, min_revision=None):
        """Marks a TTL instance healthy for its ttl_ms; returns the Instance.

        FAILED_PRECONDITION for an instance registered without ttl_ms.
        """
        msg = pb.HeartbeatRequest(service=service, endpoint=endpoint)
        return self.call("heartbeat", msg, min_revision=min_revision).instance

    def status(self, min_revision=None):
        """The server's state (the Status call): a discovery.v1.StatusResponse."""
        return self.call("server_status", pb.StatusRequest(), min_revision=min_revision)

    # ---- events ----

    def watch(self, services=None, include_sync=False):
        """A Watch on this client's publish_url: every service, or those named."""
        return Watch(self.publish_url, services, include_sync, self.tls)

    def wait_for_services(self, names, timeout):
        """Waits until every named service has a healthy instance; returns True.

        Event-driven: it subscribes to those services first, then checks each
        once with IsHealthy, then re-checks a service when one of its events
        arrives, and all of them when a SYNC shows a revision it has not
        checked (events can be lost). Raises ServicesNotReady (a
        TimeoutError naming the missing, unhealthy and unchecked services)
        after timeout seconds.
        """
        if isinstance(names, str):
            names = [names]
        names = sorted({normalize_name(n) for n in names})
        deadline = time.monotonic() + timeout
        state = {}

        def check(name):
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TransportError("deadline passed", NNG_ETIMEDOUT)
                msg = pb.IsHealthyRequest(service=name)
                healthy = self.call("is_healthy", msg, min(self.timeout, left)).healthy
                state[name] = "healthy" if healthy else "unhealthy"
            except DiscoveryError as exc:
                if exc.status != pb.STATUS_NOT_FOUND:
                    raise
                state[name] = "missing"
            except TransportError as exc:
                if exc.nng_error == NNG_ECLOSED:
                    raise
                state[name] = "unreachable"
                return False
            return True

        def check_all():
            ok = True
            for n in names:
                ok = check(n) and ok
            return self.revision if ok else None

        with self.watch(names, include_sync=True) as w:
            checked = check_all()
            while True:
                if all(state.get(n) == "healthy" for n in names):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    by = lambda s: [n for n in names if state.get(n) == s]  # noqa: E731
                    raise ServicesNotReady(
                        timeout, by("missing"), by("unhealthy"), by("unreachable")
                    )
                ev = w.next(left)
                if ev is None:
                    continue
                if ev.type == pb.EVENT_SYNC:
                    if checked is None or ev.revision != checked:
                        checked = check_all()
                elif ev.service in state:
                    check(ev.service)
