"""A Python client for discoveryd, built on Debian's own packages only.

It speaks the published contract, proto/discovery/v1/discovery.proto: one
serialized Request per nng REQ message, one serialized Response back, and one
serialized Event per PUB message. It needs:

- the system nng library (Debian's libnng1), loaded with ctypes;
- the message classes that protoc generates from proto/ (python3-protobuf and
  protobuf-compiler). The build writes them to <build>/python; by hand:

      protoc --proto_path=proto --python_out=DIR discovery/v1/discovery.proto

  and put DIR (which then holds discovery/v1/discovery_pb2.py) on PYTHONPATH.

Example:

    from discovery_client import Client
    with Client("tcp://127.0.0.1:7700") as c:
        c.register("memory", "http://127.0.0.1:9000")
        print(c.resolve("memory"))        # "http://127.0.0.1:9000", or None

Server errors raise DiscoveryError, which carries the status code
(discovery.v1.StatusCode). No answer at all (a timeout, a closed client, an
undecodable reply) raises TransportError.

A Client has one REQ socket, and a REQ socket without contexts carries one
request at a time, so the calls of one Client are serialized by a lock: it
may be shared between threads, but its calls do not run in parallel. Use one
Client per thread for that.
"""

import ctypes
import os
import re
import threading
import time

try:
    from discovery.v1 import discovery_pb2 as pb
except ImportError as exc:  # pragma: no cover - a setup problem, not a test case
    raise ImportError(
        "discovery_client needs the message classes generated from proto/: run "
        "'protoc --proto_path=proto --python_out=DIR discovery/v1/discovery.proto' "
        "and put DIR on PYTHONPATH (the build writes them to <build>/python)"
    ) from exc


def _version_from_cmake():
    """The project(VERSION) of the source tree this file sits in, or None.

    The build generates discovery_version.py from that same line (next to
    discovery_pb2, in <build>/python); this reads it directly when the client
    runs from a checkout without that file on PYTHONPATH.
    """
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "CMakeLists.txt")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r"\bproject\s*\(\s*discovery\b[^)]*\bVERSION\s+([0-9]+\.[0-9]+\.[0-9]+)", text)
    return m.group(1) if m else None


try:
    from discovery_version import __version__
except ImportError:  # pragma: no cover - run from a checkout with no build
    __version__ = _version_from_cmake() or "0+unknown"

__all__ = [
    "Client",
    "Watch",
    "DiscoveryError",
    "TransportError",
    "ServicesNotReady",
    "normalize_name",
    "subscription_prefix",
    "pb",
    "DEFAULT_URL",
    "DEFAULT_PUBLISH_URL",
    "SYNC_PREFIX",
]

DEFAULT_URL = "tcp://127.0.0.1:7700"
DEFAULT_PUBLISH_URL = "tcp://127.0.0.1:7701"

# Every EVENT_SYNC starts with these bytes: field 2 (type), varint 5. SYNC
# has an empty service, so field 1 is absent and type comes first.
SYNC_PREFIX = b"\x10\x05"

# nng's numbers (nng.h), for the few the client tells apart.
NNG_ETIMEDOUT = 5
NNG_ECONNREFUSED = 6
NNG_ECLOSED = 7
_NNG_FLAG_ALLOC = 1
_NNG_FLAG_NONBLOCK = 2
_NNG_DURATION_INFINITE = -1
_NNG_BAD_URL = (3, 9, 15)  # EINVAL, ENOTSUP, EADDRINVAL

# How long one blocking receive may take before Python gets control back,
# so that Ctrl-C and close() from another thread are noticed.
_POLL_MS = 200


class _Socket(ctypes.Structure):
    """nng_socket: a struct holding one id, passed by value."""

    _fields_ = [("id", ctypes.c_uint32)]


def _load_nng():
    name = os.environ.get("DISCOVERY_LIBNNG", "libnng.so.1")
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise ImportError(
            "discovery_client cannot load %s (Debian: apt-get install libnng1)" % name
        ) from exc
    sock_p = ctypes.POINTER(_Socket)
    protos = {
        "nng_req0_open": ([sock_p], ctypes.c_int),
        "nng_sub0_open": ([sock_p], ctypes.c_int),
        "nng_close": ([_Socket], ctypes.c_int),
        "nng_dial": ([_Socket, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int], ctypes.c_int),
        "nng_socket_set": (
            [_Socket, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t],
            ctypes.c_int,
        ),
        "nng_socket_set_int": ([_Socket, ctypes.c_char_p, ctypes.c_int], ctypes.c_int),
        "nng_socket_set_ms": ([_Socket, ctypes.c_char_p, ctypes.c_int32], ctypes.c_int),
        "nng_send": ([_Socket, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int),
        "nng_recv": (
            [_Socket, ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.c_int],
            ctypes.c_int,
        ),
        "nng_free": ([ctypes.c_void_p, ctypes.c_size_t], None),
        "nng_strerror": ([ctypes.c_int], ctypes.c_char_p),
    }
    for fn, (args, res) in protos.items():
        f = getattr(lib, fn)
        f.argtypes = args
        f.restype = res
    return lib


_nng = _load_nng()


class DiscoveryError(Exception):
    """The server answered with a status other than STATUS_OK.

    status is the discovery.v1.StatusCode number (gRPC's numbering: 3
    INVALID_ARGUMENT, 5 NOT_FOUND, 14 UNAVAILABLE, ...), status_name its
    name, and message the server's reason.
    """

    def __init__(self, status, message=""):
        self.status = status
        self.message = message
        text = self.status_name + (": " + message if message else "")
        super().__init__(text)

    @property
    def status_name(self):
        try:
            return pb.StatusCode.Name(self.status)
        except ValueError:
            return "STATUS_%d" % self.status


class TransportError(Exception):
    """No usable answer: nng failed, the call timed out, or the reply was malformed.

    nng_error is nng's error number (0 for a malformed reply); timed_out is
    true when the server did not answer in time, which is also what a server
    that is down looks like, since the client dials in the background.
    """

    def __init__(self, message, nng_error=0):
        self.nng_error = nng_error
        super().__init__(message)

    @property
    def timed_out(self):
        return self.nng_error == NNG_ETIMEDOUT


class ServicesNotReady(TimeoutError):
    """wait_for_services ran out of time.

    missing: names the server does not know; unhealthy: names with no
    healthy instance; unreachable: names that could not be checked because
    the server did not answer.
    """

    def __init__(self, timeout, missing, unhealthy, unreachable):
        self.missing = missing
        self.unhealthy = unhealthy
        self.unreachable = unreachable
        parts = []
        if missing:
            parts.append("missing: " + ", ".join(missing))
        if unhealthy:
            parts.append("not healthy: " + ", ".join(unhealthy))
        if unreachable:
            parts.append("server did not answer for: " + ", ".join(unreachable))
        super().__init__(
            "services not ready after %g s (%s)" % (timeout, "; ".join(parts))
        )


def _nng_error(what, rv):
    return TransportError(
        "%s: %s" % (what, _nng.nng_strerror(rv).decode("utf-8", "replace")), rv
    )


def _check(what, rv):
    if rv != 0:
        raise _nng_error(what, rv)


def _set_ms(sock, opt, ms):
    _check("nng_socket_set_ms %s" % opt.decode(), _nng.nng_socket_set_ms(sock, opt, ms))


def _open_socket(opener, what):
    """Opens a socket that redials quickly; the caller owns (and closes) it."""
    sock = _Socket()
    _check(what, opener(ctypes.byref(sock)))
    try:
        # Redial soon after a server restart (nng's default backs off to ~1 min).
        _set_ms(sock, b"reconnect-time-min", 50)
        _set_ms(sock, b"reconnect-time-max", 1000)
    except BaseException:
        _nng.nng_close(sock)
        raise
    return sock


def _dial(sock, url):
    """Dials in the background: opening works while the server is down."""
    rv = _nng.nng_dial(sock, url.encode("utf-8"), None, _NNG_FLAG_NONBLOCK)
    if rv in _NNG_BAD_URL:
        raise ValueError("cannot dial %r: %s" % (url, _nng.nng_strerror(rv).decode()))
    _check("nng_dial %s" % url, rv)


def _recv(sock):
    """One message as bytes, or raises TransportError (with nng's number)."""
    ptr = ctypes.c_void_p()
    size = ctypes.c_size_t()
    rv = _nng.nng_recv(sock, ctypes.byref(ptr), ctypes.byref(size), _NNG_FLAG_ALLOC)
    if rv != 0:
        raise _nng_error("nng_recv", rv)
    try:
        return ctypes.string_at(ptr, size.value)
    finally:
        _nng.nng_free(ptr, size.value)


_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$")
_NAME_TABLE = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ_", "abcdefghijklmnopqrstuvwxyz-")


def normalize_name(name):
    """The server's form of a service name: ASCII lowercase, '_' turned into '-'.

    Raises ValueError when the result is not a valid name (1-63 characters
    of [a-z0-9.-], starting and ending with a letter or digit).
    """
    norm = name.translate(_NAME_TABLE)
    if not _NAME_RE.match(norm):
        raise ValueError("invalid service name %r" % name)
    return norm


def subscription_prefix(name):
    """The PUB/SUB prefix that selects one service's events.

    Event.service is field 1 and a name is at most 63 bytes, so every event
    of a service starts with 0x0A, len(name), name.
    """
    norm = normalize_name(name).encode("ascii")
    return bytes([0x0A, len(norm)]) + norm


class Watch:
    """A SUB socket on the server's publish URL, yielding decoded Events.

    Iterating blocks until the next event; next(timeout) waits at most
    timeout seconds and returns None when nothing came. SYNC events
    (EVENT_SYNC: the current revision, at start and every --sync-interval)
    are always received, and are yielded only with include_sync=True.
    Events can be lost (nng PUB drops for slow subscribers): compare
    revisions, or reload with Client.get_all. One consumer at a time; close()
    may be called from another thread and ends the iteration.
    """

    def __init__(self, publish_url=DEFAULT_PUBLISH_URL, services=None, include_sync=False):
        self.publish_url = publish_url
        self.include_sync = include_sync
        if isinstance(services, str):
            services = [services]
        prefixes = [b""]
        if services:
            prefixes = sorted({subscription_prefix(s) for s in services}) + [SYNC_PREFIX]
        self._closed = False
        self._sock = _open_socket(_nng.nng_sub0_open, "nng_sub0_open")
        try:
            # Room for bursts; nng's default queue is 16 messages.
            _check("recv-buffer", _nng.nng_socket_set_int(self._sock, b"recv-buffer", 1024))
            for p in prefixes:
                buf = ctypes.create_string_buffer(p, len(p))
                _check(
                    "sub:subscribe",
                    _nng.nng_socket_set(self._sock, b"sub:subscribe", buf, len(p)),
                )
            _dial(self._sock, publish_url)
        except BaseException:
            self.close()
            raise

    def next(self, timeout=None):
        """The next Event, or None after timeout seconds (None: wait forever).

        Raises TransportError (nng_error NNG_ECLOSED) once the watch is closed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._closed:
                raise TransportError("watch closed", NNG_ECLOSED)
            wait = _POLL_MS
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                wait = max(1, min(_POLL_MS, int(left * 1000)))
            try:
                _set_ms(self._sock, b"recv-timeout", wait)
                data = _recv(self._sock)
            except TransportError as exc:
                if self._closed:  # by close() on another thread
                    raise TransportError("watch closed", NNG_ECLOSED) from None
                if exc.timed_out:
                    continue
                raise
            try:
                ev = pb.Event.FromString(data)
            except Exception:  # DecodeError: not ours to fail on; skip it
                continue
            if ev.type == pb.EVENT_SYNC and not self.include_sync:
                continue
            return ev

    def __iter__(self):
        while True:
            try:
                yield self.next()
            except TransportError as exc:
                if exc.nng_error == NNG_ECLOSED:
                    return
                raise

    def close(self):
        if not self._closed:
            self._closed = True
            _nng.nng_close(self._sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_sock", None) is not None and _nng is not None:
            self.close()


class Client:
    """A discoveryd client: one REQ socket on url (and, for watches, publish_url).

    timeout (seconds) bounds every call; token goes in Request.auth_token.
    The socket dials in the background and redials after a server restart,
    so a client opens while the server is down and its calls then raise
    TransportError (timed_out) until it is up. REQ resend is off: nng would
    otherwise send a slow request again after 60 s and run it twice.
    """

    def __init__(self, url=DEFAULT_URL, timeout=5.0, token=None, publish_url=DEFAULT_PUBLISH_URL):
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.url = url
        self.publish_url = publish_url
        self.timeout = timeout
        self.token = token
        #: The registry revision carried by the last reply (failed calls included).
        self.revision = 0
        self._lock = threading.Lock()
        self._closed = False
        self._sock = _open_socket(_nng.nng_req0_open, "nng_req0_open")
        try:
            _set_ms(self._sock, b"req:resend-time", _NNG_DURATION_INFINITE)
            _dial(self._sock, url)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _ms(seconds):
        return max(1, int(seconds * 1000))

    def close(self):
        with self._lock:
            if not self._closed:
                self._closed = True
                _nng.nng_close(self._sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_sock", None) is not None and _nng is not None:
            self.close()

    def call(self, field, message, timeout=None):
        """Sends Request{field: message} and returns the matching result message.

        The one generic path every call takes. Raises DiscoveryError for a
        status other than OK, TransportError when no valid reply came within
        timeout (default: the client's).
        """
        req = pb.Request(**{field: message})
        if self.token:
            req.auth_token = self.token
        data = req.SerializeToString()
        timeout = timeout or self.timeout
        with self._lock:
            if self._closed:
                raise TransportError("client closed", NNG_ECLOSED)
            try:
                _set_ms(self._sock, b"send-timeout", self._ms(timeout))
                _set_ms(self._sock, b"recv-timeout", self._ms(timeout))
                _check("send", _nng.nng_send(self._sock, data, len(data), 0))
                reply = _recv(self._sock)
            except TransportError as exc:
                if exc.timed_out:
                    msg = "%s: no answer within %g s" % (self.url, timeout)
                else:
                    msg = "%s: %s" % (self.url, exc)
                raise TransportError(msg, exc.nng_error) from None
        try:
            rep = pb.Response.FromString(reply)
        except Exception as exc:
            raise TransportError("undecodable reply: %s" % exc) from exc
        self.revision = rep.revision
        if rep.status != pb.STATUS_OK:
            raise DiscoveryError(rep.status, rep.message)
        if rep.WhichOneof("result") != field:
            raise TransportError("reply carries %s, not %s" % (rep.WhichOneof("result"), field))
        return getattr(rep, field)

    # ---- the calls ----

    def register(self, service, endpoint, metadata=None, health_path=None, ttl_ms=0, weight=0):
        """Registers (or updates) an instance; returns the stored discovery.v1.Instance."""
        msg = pb.RegisterRequest(
            service=service,
            endpoint=endpoint,
            metadata=metadata or {},
            health_path=health_path or "",
            ttl_ms=ttl_ms,
            weight=weight,
        )
        return self.call("register", msg).instance

    def resolve_instance(self, service, healthy_only=False):
        """The Instance the server picks; raises DiscoveryError (NOT_FOUND, UNAVAILABLE)."""
        msg = pb.ResolveRequest(service=service, healthy_only=healthy_only)
        return self.call("resolve", msg).instance

    def resolve(self, service, healthy_only=False):
        """The endpoint of one instance, or None when there is none to use.

        None means the service is not registered (NOT_FOUND) or, with
        healthy_only, that none of its instances is healthy (UNAVAILABLE).
        Without healthy_only a registered service always resolves; the
        instance may be unhealthy (resolve_instance tells its health).
        """
        try:
            return self.resolve_instance(service, healthy_only).endpoint
        except DiscoveryError as exc:
            if exc.status in (pb.STATUS_NOT_FOUND, pb.STATUS_UNAVAILABLE):
                return None
            raise

    def deregister(self, service, endpoint=None):
        """Removes one instance, or every instance when endpoint is None; returns how many."""
        msg = pb.DeregisterRequest(service=service, endpoint=endpoint or "")
        return self.call("deregister", msg).removed

    def health(self, service, endpoint=None):
        """The IsHealthyResponse (healthy, state); raises DiscoveryError NOT_FOUND."""
        msg = pb.IsHealthyRequest(service=service, endpoint=endpoint or "")
        return self.call("is_healthy", msg)

    def is_healthy(self, service, endpoint=None):
        """True when the instance (or, without endpoint, any instance) is healthy.

        An unknown service or instance is False; health() raises instead.
        """
        try:
            return self.health(service, endpoint).healthy
        except DiscoveryError as exc:
            if exc.status == pb.STATUS_NOT_FOUND:
                return False
            raise

    def get_all(self, service=None):
        """Every instance (of service, if given) sorted by (service, endpoint).

        An unknown service gives []. self.revision is the revision the list reflects.
        """
        return list(self.call("get_all", pb.GetAllRequest(service=service or "")).instances)

    def heartbeat(self, service, endpoint):
        """Marks a TTL instance healthy for its ttl_ms; returns the Instance.

        FAILED_PRECONDITION for an instance registered without ttl_ms.
        """
        msg = pb.HeartbeatRequest(service=service, endpoint=endpoint)
        return self.call("heartbeat", msg).instance

    # ---- events ----

    def watch(self, services=None, include_sync=False):
        """A Watch on this client's publish_url: every service, or those named."""
        return Watch(self.publish_url, services, include_sync)

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
