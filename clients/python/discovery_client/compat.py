"""RemoteServiceDiscovery: the original asyncio interface, backed by discoveryd.

An application written against the original ServiceDiscovery class switches
by changing its constructor only (docs/clients.md shows the FastAPI start-up
and shutdown pattern):

    discovery = RemoteServiceDiscovery("tcp://127.0.0.1:7700")
    await discovery.initialize()
    await discovery.register("memory", "http://127.0.0.1:9000")
    endpoint = await discovery.resolve("memory")     # Optional[str]
    await discovery.shutdown()

Health checking is the server's job here: the original's background health
loop runs in discoveryd, and is_healthy reports what it last saw.
"""

from typing import Dict, Optional

from discovery_client.aio import AsyncClient
from discovery_client.client import DEFAULT_URL
from discovery_client._pb import pb
from discovery_client.watch import DEFAULT_PUBLISH_URL

__all__ = ["RemoteServiceDiscovery"]


class RemoteServiceDiscovery:
    """The original interface: initialize, resolve, register, deregister,
    is_healthy, get_all, shutdown, each a coroutine.

    url may be a list (failover); token, token_file, tls and timeout are
    AsyncClient's. Calls before initialize() or after shutdown() raise
    RuntimeError. Server errors raise DiscoveryError, no answer
    TransportError, as in the rest of the client.
    """

    def __init__(self, url=DEFAULT_URL, *, publish_url=DEFAULT_PUBLISH_URL, token=None,
                 token_file=None, tls=None, timeout=5.0):
        self._args = dict(url=url, publish_url=publish_url, token=token, token_file=token_file,
                          tls=tls, timeout=timeout)
        self._client: Optional[AsyncClient] = None

    def _c(self) -> AsyncClient:
        if self._client is None:
            raise RuntimeError("RemoteServiceDiscovery: call await initialize() first")
        return self._client

    async def initialize(self) -> None:
        """Opens the client and waits for one answer from the server.

        Raises TransportError when the server does not answer within the
        timeout, so a start-up handler fails instead of serving without it.
        """
        if self._client is not None:
            return
        client = AsyncClient(**self._args)
        try:
            await client.get_all("initialize-probe")
        except BaseException:
            await client.close()
            raise
        self._client = client

    async def register(self, name: str, endpoint: str) -> None:
        """Registers endpoint under name (again: updates it); the server health-checks it."""
        await self._c().register(name, endpoint)

    async def deregister(self, name: str) -> None:
        """Removes every instance of name; an unknown name is not an error."""
        await self._c().deregister(name)

    async def resolve(self, name: str) -> Optional[str]:
        """An endpoint of name, or None when it is not registered."""
        return await self._c().resolve(name)

    async def is_healthy(self, name: str) -> bool:
        """True when an instance of name is healthy; False when none is, or name is unknown."""
        return await self._c().is_healthy(name)

    async def get_all(self) -> Dict[str, str]:
        """{service: endpoint}, one endpoint per service: a healthy one if any,
        else the first (instances come sorted by endpoint)."""
        out: Dict[str, str] = {}
        healthy = set()
        for inst in await self._c().get_all():
            if inst.service in healthy:
                continue
            if inst.health == pb.HEALTH_HEALTHY:
                out[inst.service] = inst.endpoint
                healthy.add(inst.service)
            else:
                out.setdefault(inst.service, inst.endpoint)
        return out

    async def shutdown(self) -> None:
        """Closes the client. Registrations stay: deregister first to remove them."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

