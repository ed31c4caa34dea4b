"""Events: service names as the server forms them, the PUB/SUB prefix that
selects a service, and Watch, a SUB socket yielding decoded Events."""

import ctypes
import re
import time

from discovery_client import _nng
from discovery_client import follow as _follow
from discovery_client._nng import check as _check
from discovery_client._nng import set_ms as _set_ms
from discovery_client._pb import pb
from discovery_client.errors import NNG_ECLOSED, TransportError

DEFAULT_PUBLISH_URL = "tcp://127.0.0.1:7701"

# Every EVENT_SYNC starts with these bytes: field 2 (type), varint 5. SYNC
# has an empty service, so field 1 is absent and type comes first.
SYNC_PREFIX = b"\x10\x05"

# How long one blocking receive may take before Python gets control back,
# so that Ctrl-C and close() from another thread are noticed.
_POLL_MS = 200

_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$")
_NAME_TABLE = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ_", "abcdefghijklmnopqrstuvwxyz-")


def _now_ms():
    return time.monotonic() * 1000.0


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
    may be called from another thread and ends the iteration. tls
    (TLSOptions) is for tls+tcp:// URLs.

    publish_url may be a list (the nodes of a cluster, or failover servers):
    the watch subscribes to every one but delivers one node's events at a
    time, switching when that node has missed two SYNCs, as libdiscovery
    does (discovery_client.follow; docs/clients.md#failover). A switch that
    cannot continue cleanly is a gap: it counts in `gaps`, and starts with
    the new node's SYNC, its `reason` saying so (seen with include_sync).
    `node` is the index of the node followed (None before the first event).
    """

    def __init__(self, publish_url=DEFAULT_PUBLISH_URL, services=None, include_sync=False, tls=None):
        self.publish_url = publish_url
        self.include_sync = include_sync
        if isinstance(services, str):
            services = [services]
        prefixes = [b""]
        if services:
            prefixes = sorted({subscription_prefix(s) for s in services}) + [SYNC_PREFIX]
        self._closed = False
        self._sock = _nng.open_socket(_nng.lib.nng_sub0_open, "nng_sub0_open")
        try:
            # Room for bursts; nng's default queue is 16 messages.
            _check("recv-buffer", _nng.lib.nng_socket_set_int(self._sock, b"recv-buffer", 1024))
            for p in prefixes:
                buf = ctypes.create_string_buffer(p, len(p))
                _check(
                    "sub:subscribe",
                    _nng.lib.nng_socket_set(self._sock, b"sub:subscribe", buf, len(p)),
                )
            # A list is dialed whole, so that a switch is instant; the
            # follower picks whose events are delivered.
            self._urls = [publish_url] if isinstance(publish_url, str) else list(publish_url)
            self._dialers = {}
            for i, url in enumerate(self._urls):
                self._dialers[_nng.dial(self._sock, url, tls)] = i
            self._pipes = {}  # pipe id -> node, for messages that outlive their pipe
            self._follower = _follow.Follower(len(self._urls)) if len(self._urls) > 1 else None
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
            ev = self._due() if self._follower is not None else None
            if ev is not None:
                if ev.type == pb.EVENT_SYNC and not self.include_sync:
                    continue
                return ev
            wait = _POLL_MS
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                wait = max(1, min(_POLL_MS, int(left * 1000)))
            if self._follower is not None and self._follower.deadline() is not None:
                due = self._follower.deadline() - _now_ms() + 1
                if due > 0:
                    wait = max(1, min(wait, int(due)))
            try:
                _set_ms(self._sock, b"recv-timeout", wait)
                data, pipe, dialer = _nng.recv_from(self._sock)
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
            if self._follower is not None:
                self._push(ev, pipe, dialer)
                continue
            if ev.type == pb.EVENT_SYNC and not self.include_sync:
                continue
            return ev

    @property
    def node(self):
        if self._follower is None:
            return 0
        return self._follower.current

    @property
    def gaps(self):
        return 0 if self._follower is None else self._follower.gaps

    def _push(self, ev, pipe, dialer):
        """Hands ev, from the node whose dialer brought it, to the follower."""
        node = self._dialers.get(dialer)
        if node is None:
            node = self._pipes.get(pipe)
            if node is None:
                return  # its pipe closed before we read it: nothing says from where
        else:
            self._pipes[pipe] = node
        sync = ev.type == pb.EVENT_SYNC
        digest = None if sync else (ev.type, ev.service, ev.instance.endpoint, ev.instance.health)
        m = _follow.Msg(ev, ev.revision, sync, digest, ev.sync_interval_ms if sync else 0)
        self._follower.push(node, pipe, m, _now_ms())

    def _due(self):
        """The next event of the followed node, after a switch if one is due; or None."""
        self._follower.tick(_now_ms())
        got = self._follower.pop()
        if got is None:
            return None
        m, gap = got
        if gap and m.sync:
            m.item.reason = "switched to %s: events may have been missed" % (
                self._urls[self._follower.current])
        return m.item

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
            _nng.lib.nng_close(self._sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_sock", None) is not None and _nng is not None:
            self.close()


