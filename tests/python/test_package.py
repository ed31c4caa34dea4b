"""pip install --no-build-isolation ./clients/python, offline, into a fresh
venv (--system-site-packages, for Debian's python3-protobuf), then import
discovery_client with no PYTHONPATH; and the import errors name what is
really missing. Works on a copy of clients/python, proto/ and CMakeLists.txt,
so the build leaves nothing in the source tree.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PIP_NO_INDEX"] = "1"  # offline: nothing may come from a registry
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="discovery-pip-")
        src = os.path.join(cls.tmp, "src")
        shutil.copytree(os.path.join(SRC, "clients", "python"), os.path.join(src, "clients", "python"),
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        shutil.copytree(os.path.join(SRC, "proto"), os.path.join(src, "proto"))
        shutil.copy(os.path.join(SRC, "CMakeLists.txt"), src)
        cls.venv = os.path.join(cls.tmp, "venv")
        cls.py = os.path.join(cls.venv, "bin", "python")
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", cls.venv],
                       check=True, env=clean_env())
        out = subprocess.run([cls.py, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                              os.path.join(src, "clients", "python")],
                             env=clean_env(), cwd=cls.tmp, capture_output=True, text=True)
        if out.returncode != 0:
            raise AssertionError("pip install failed:\n" + out.stdout + out.stderr)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def python(self, code, python=None, env=None, args=()):
        return subprocess.run([python or self.py] + list(args) + ["-c", code], capture_output=True,
                              text=True, cwd=self.tmp, env=env or clean_env())

    def test_import_with_no_pythonpath(self):
        out = self.python("import discovery_client as d, discovery_client.aio, "
                          "discovery_client.compat; print(d.__version__); print(d.pb.__name__); "
                          "print(d.__file__)")
        self.assertEqual(out.returncode, 0, out.stderr)
        version, pb_name, path = out.stdout.split()
        with open(os.path.join(SRC, "CMakeLists.txt"), encoding="utf-8") as f:
            self.assertIn("VERSION " + version, f.read())
        # The generated classes came with the package, not from a build tree.
        self.assertEqual(pb_name, "discovery_client._proto.discovery.v1.discovery_pb2")
        self.assertTrue(path.startswith(self.venv), path)

    def test_the_import_error_names_the_protobuf_runtime(self):
        # -S: no site-packages, so no google.protobuf; the package comes by PYTHONPATH.
        site = self.python("import discovery_client, os; "
                           "print(os.path.dirname(os.path.dirname(discovery_client.__file__)))")
        self.assertEqual(site.returncode, 0, site.stderr)
        env = clean_env()
        env["PYTHONPATH"] = site.stdout.strip()
        out = self.python("import discovery_client", python=sys.executable, env=env, args=["-S"])
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("google.protobuf", out.stderr)
        self.assertIn("python3-protobuf", out.stderr)
        self.assertNotIn("message classes", out.stderr.splitlines()[-1])

    def test_the_import_error_names_the_generated_classes(self):
        env = clean_env()
        env["PYTHONPATH"] = os.path.join(SRC, "clients", "python")  # no build tree
        out = self.python("import discovery_client", python=sys.executable, env=env)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("message classes generated from proto/", out.stderr.splitlines()[-1])


if __name__ == "__main__":
    unittest.main()
