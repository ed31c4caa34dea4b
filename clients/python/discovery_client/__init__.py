"""A Python client for discoveryd, built on Debian's own packages only.

It speaks the published contract, proto/discovery/v1/discovery.proto: one
serialized Request per nng REQ message, one serialized Response back, and one
serialized Event per PUB message. It needs the system nng library (Debian's
libnng1, loaded with ctypes), python3-protobuf, and the message classes
protoc generates from proto/: `pip install --no-build-isolation
./clients/python` generates them into the installed package; the build tree
has them in <build>/python (docs/clients.md).

    from discovery_client import Client
    with Client("tcp://127.0.0.1:7700") as c:
        c.register("memory", "http://127.0.0.1:9000")
        print(c.resolve("memory"))        # "http://127.0.0.1:9000", or None

Server errors raise DiscoveryError, which carries the status code
(discovery.v1.StatusCode). No answer at all (a timeout, a closed client, an
undecodable reply) raises TransportError.

A Client's calls are serialized by a lock (one REQ socket carries one request
at a time): share it between threads, or use discovery_client.aio.AsyncClient
for concurrent calls from asyncio, and discovery_client.compat for the
original RemoteServiceDiscovery interface.
"""

import os
import re

from discovery_client._pb import pb
from discovery_client.client import DEFAULT_URL, Client
from discovery_client.errors import DiscoveryError, ServicesNotReady, TransportError
from discovery_client.tls import TLSOptions
from discovery_client.tokenfile import TOKEN_ENV, read_token_file
from discovery_client.watch import (DEFAULT_PUBLISH_URL, SYNC_PREFIX, Watch, normalize_name,
                                    subscription_prefix)


def _version_from_cmake():
    """The project(VERSION) of the source tree this package sits in, or None."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                        "CMakeLists.txt")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r"\bproject\s*\(\s*discovery\b[^)]*\bVERSION\s+([0-9]+\.[0-9]+\.[0-9]+)", text)
    return m.group(1) if m else None


# Installed: setup.py wrote _version.py; a build tree: <build>/python/discovery_version.py
# (clients/CMakeLists.txt); a bare checkout: the top-level CMakeLists.txt.
try:
    from discovery_client._version import __version__
except ImportError:
    try:
        from discovery_version import __version__
    except ImportError:  # pragma: no cover - run from a checkout with no build
        __version__ = _version_from_cmake() or "0+unknown"

__all__ = [
    "Client",
    "Watch",
    "TLSOptions",
    "DiscoveryError",
    "TransportError",
    "ServicesNotReady",
    "normalize_name",
    "subscription_prefix",
    "read_token_file",
    "pb",
    "DEFAULT_URL",
    "DEFAULT_PUBLISH_URL",
    "SYNC_PREFIX",
    "TOKEN_ENV",
    "__version__",
]
