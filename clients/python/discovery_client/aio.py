"""AsyncClient: the synchronous Client's constructor and calls as coroutines.

The calls never block the event loop: each runs on a bounded pool of worker
threads, and each worker thread has its own Client (its own REQ socket), so
up to max_workers calls are in flight at once instead of queueing behind one
socket's lock. Watches and wait_for_services get a thread of their own, so a
long wait never holds a call worker.
"""

import asyncio
import concurrent.futures
import threading

from discovery_client.client import _WRITES, DEFAULT_URL, Client
from discovery_client.errors import NNG_ECLOSED, TransportError
from discovery_client.tokenfile import resolve_token
from discovery_client.watch import DEFAULT_PUBLISH_URL, Watch

__all__ = ["AsyncClient", "AsyncWatch"]


class AsyncClient:
    """Client(url, timeout, token, publish_url, token_file, tls) for asyncio.

    Every call of Client is here as a coroutine with the same arguments and
    results (register, resolve, resolve_instance, deregister, health,
    is_healthy, get_all, heartbeat, status, call), plus wait_for_services and
    watch(), whose result is iterated with `async for`. max_workers bounds
    the threads (and sockets) used for calls. Use it as `async with`, or
    await close().

    min_revision= on each call, the min_revision attribute and
    read_own_writes= work as Client's; the revision written is this
    AsyncClient's, whichever thread's socket carried the write.
    """

    def __init__(self, url=DEFAULT_URL, timeout=5.0, token=None, publish_url=DEFAULT_PUBLISH_URL,
                 token_file=None, tls=None, max_workers=16, read_own_writes=False):
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.url = url
        self.publish_url = publish_url
        self.timeout = timeout
        # Read once here, so a bad token file fails the constructor, not a call.
        self.token = resolve_token(token, token_file)
        self.tls = tls
        self.min_revision = 0
        self.read_own_writes = read_own_writes
        self.written = 0
        self._written_lock = threading.Lock()
        self._local = threading.local()
        self._clients = []
        self._clients_lock = threading.Lock()
        self._closed = False
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="discovery-aio")
        # Fail now on a bad URL or TLS option, as Client's constructor does.
        self._new_client().close()

    def _new_client(self):
        return Client(self.url, self.timeout, self.token or "", self.publish_url, tls=self.tls)

    def _thread_client(self):
        c = getattr(self._local, "client", None)
        if c is None:
            with self._clients_lock:
                if self._closed:
                    raise TransportError("client closed", NNG_ECLOSED)
                c = self._new_client()
                self._clients.append(c)
            self._local.client = c
        return c

    async def _run(self, name, *args, **kw):
        if self._closed:
            raise TransportError("client closed", NNG_ECLOSED)

        want = kw.get("min_revision")
        want = self.min_revision if want is None else want
        kw["min_revision"] = max(want, self.written) if self.read_own_writes else want

        def work():
            c = self._thread_client()
            result = getattr(c, name)(*args, **kw)
            if (args[0] if name == "call" else name) in _WRITES:
                with self._written_lock:
                    self.written = max(self.written, c.revision)
            return result

        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    async def call(self, field, message, timeout=None, min_revision=None):
        return await self._run("call", field, message, timeout, min_revision=min_revision)

    async def register(self, service, endpoint, metadata=None, health_path=None, ttl_ms=0,
                       weight=0, min_revision=None):
        return await self._run("register", service, endpoint, metadata, health_path, ttl_ms, weight,
                               min_revision=min_revision)

    async def resolve_instance(self, service, healthy_only=False, min_revision=None):
        return await self._run("resolve_instance", service, healthy_only, min_revision=min_revision)

    async def resolve(self, service, healthy_only=False, min_revision=None):
        return await self._run("resolve", service, healthy_only, min_revision=min_revision)

    async def deregister(self, service, endpoint=None, min_revision=None):
        return await self._run("deregister", service, endpoint, min_revision=min_revision)

    async def health(self, service, endpoint=None, min_revision=None):
        return await self._run("health", service, endpoint, min_revision=min_revision)

    async def is_healthy(self, service, endpoint=None, min_revision=None):
        return await self._run("is_healthy", service, endpoint, min_revision=min_revision)

    async def get_all(self, service=None, min_revision=None):
        return await self._run("get_all", service, min_revision=min_revision)

    async def heartbeat(self, service, endpoint, min_revision=None):
        return await self._run("heartbeat", service, endpoint, min_revision=min_revision)

    async def status(self, min_revision=None):
        return await self._run("status", min_revision=min_revision)

    async def wait_for_services(self, names, timeout):
        """As Client.wait_for_services, on a thread and a Client of its own."""
        if self._closed:
            raise TransportError("client closed", NNG_ECLOSED)

        def work():
            with self._new_client() as c:
                return c.wait_for_services(names, timeout)

        return await asyncio.to_thread(work)

    def watch(self, services=None, include_sync=False):
        """An AsyncWatch: `async for event in client.watch(["memory"])`."""
        return AsyncWatch(Watch(self.publish_url, services, include_sync, self.tls))

    async def close(self):
        """Closes every socket; waits for the calls in flight to end."""
        with self._clients_lock:
            if self._closed:
                return
            self._closed = True
            clients = list(self._clients)
        for c in clients:
            c.close()
        await asyncio.to_thread(self._pool.shutdown, True)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


class AsyncWatch:
    """A Watch read from a thread of its own; `async for` yields its Events.

    next(timeout) is a coroutine returning an Event or None after timeout
    seconds. close() (sync, safe from any thread) ends the iteration.
    """

    def __init__(self, watch):
        self._watch = watch
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="discovery-watch")

    async def next(self, timeout=None):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._watch.next, timeout)

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return await self.next()
        except TransportError as exc:
            if exc.nng_error == NNG_ECLOSED:
                raise StopAsyncIteration from None
            raise

    def close(self):
        self._watch.close()
        self._thread.shutdown(wait=False)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()
