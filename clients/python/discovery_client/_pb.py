"""The message classes generated from proto/discovery/v1/discovery.proto.

Installed (pip install ./clients/python), they sit inside this package
(discovery_client/_proto, written by setup.py's protoc run); in a build tree
they are <build>/python/discovery/v1/discovery_pb2.py on PYTHONPATH. The
import error says which of the two things is really missing: the protobuf
runtime (google.protobuf) or the generated classes.
"""

try:
    import google.protobuf  # noqa: F401  (only to tell the two failures apart)
except ImportError as exc:  # pragma: no cover - a setup problem, not a test case
    raise ImportError(
        "discovery_client needs the protobuf runtime, google.protobuf, which this "
        "python3 cannot import (Debian: apt-get install python3-protobuf, and run "
        "/usr/bin/python3; another interpreter needs its own protobuf package)"
    ) from exc

try:
    from discovery_client._proto.discovery.v1 import discovery_pb2 as pb
except ImportError:
    try:
        from discovery.v1 import discovery_pb2 as pb
    except ImportError as exc:  # pragma: no cover - a setup problem
        raise ImportError(
            "discovery_client needs the message classes generated from proto/: install "
            "the package (pip install --no-build-isolation ./clients/python, which runs "
            "protoc), or run 'protoc --proto_path=proto --python_out=DIR "
            "discovery/v1/discovery.proto' and put DIR on PYTHONPATH (the build writes "
            "them to <build>/python)"
        ) from exc

__all__ = ["pb"]
