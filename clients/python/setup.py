"""Build hook for the discovery-client package (metadata in pyproject.toml).

build_py runs protoc on proto/discovery/v1/discovery.proto and puts the
generated message classes inside the package (discovery_client/_proto), and
writes discovery_client/_version.py from the top-level CMakeLists.txt's
project(VERSION), as clients/CMakeLists.txt does for the build tree. Neither
is ever written into the source tree.

PROTOC names the compiler (default: protoc on PATH); DISCOVERY_PROTO_DIR the
proto/ directory (default: ../../proto from here, the repository's).
"""

import os
import re
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_FILE = "discovery/v1/discovery.proto"


def proto_dir():
    d = os.environ.get("DISCOVERY_PROTO_DIR") or os.path.join(HERE, "..", "..", "proto")
    if not os.path.isfile(os.path.join(d, PROTO_FILE)):
        raise SystemExit("setup.py: no %s under %s (set DISCOVERY_PROTO_DIR)" % (PROTO_FILE, d))
    return d


def version():
    path = os.path.join(HERE, "..", "..", "CMakeLists.txt")
    try:
        with open(path, encoding="utf-8") as f:
            m = re.search(r"\bproject\s*\(\s*discovery\b[^)]*\bVERSION\s+([0-9]+\.[0-9]+\.[0-9]+)",
                          f.read())
    except OSError:
        m = None
    return m.group(1) if m else "0+unknown"


class BuildWithMessages(build_py):
    """build_py, plus the generated message classes and version module."""

    def run(self):
        super().run()
        pkg = os.path.join(self.build_lib, "discovery_client")
        out = os.path.join(pkg, "_proto")
        os.makedirs(out, exist_ok=True)
        protoc = os.environ.get("PROTOC") or shutil.which("protoc")
        if not protoc:
            raise SystemExit("setup.py: protoc is missing (Debian: apt-get install protobuf-compiler)")
        subprocess.check_call([protoc, "--proto_path=" + proto_dir(), "--python_out=" + out,
                               PROTO_FILE])
        for d in ("", "discovery", "discovery/v1"):
            open(os.path.join(out, d, "__init__.py"), "a").close()
        with open(os.path.join(pkg, "_version.py"), "w", encoding="utf-8") as f:
            f.write("# Written by setup.py from project(VERSION) in CMakeLists.txt.\n"
                    "__version__ = %r\n" % version())


setup(version=version(), cmdclass={"build_py": BuildWithMessages})
