"""contrib/discoveryd.yaml against discoveryd's options table.

Every setting that has a YAML key (as `discoveryd --help` lists them) must
appear in the example file; uncommented, the file must load with no warning
and set every setting to the default --help states. The TLS section is
checked for presence only (loading it needs real certificates and a
tls+tcp:// address), as are cluster_ca, cluster_cert and cluster_key (they
need an etcds:// cluster), and the token file is pointed at a throwaway one.

Usage: example_config.py DISCOVERYD EXAMPLE_YAML
"""
import os
import re
import subprocess
import sys
import tempfile


def settings(discoveryd):
    """(flag, yaml key, default) for each setting --help gives a YAML key."""
    out = subprocess.run([discoveryd, "--help"], check=True, capture_output=True,
                         text=True).stdout.splitlines()
    found = []
    for line, nxt in zip(out, out[1:]):
        m = re.match(r"\s+--([a-z-]+)(?: \S+)?\s+.*\(default (.*)\)$", line)
        y = re.search(r"yaml (\S+)$", nxt)
        if m and y:
            found.append((m.group(1), y.group(1), m.group(2)))
    return found


def uncomment(text):
    """Removes the '#' in front of settings, list items and section keys."""
    return re.sub(r"(?m)^#((?:  )*(?:- |[a-z_]+:(?: |$)))", r"\1", text)


def keys(text):
    """Every dotted key path the (uncommented) YAML text sets."""
    paths, section = set(), None
    for line in text.splitlines():
        m = re.match(r"^( *)([a-z_]+):", line)
        if not m:
            continue
        if m.group(1) == "":
            section = m.group(2)
            paths.add(section)
        elif len(m.group(1)) == 2 and section is not None:
            paths.add(section + "." + m.group(2))
    return paths


def main():
    discoveryd, example = os.path.abspath(sys.argv[1]), sys.argv[2]
    table = settings(discoveryd)
    if len(table) < 20:
        sys.exit(f"only {len(table)} settings parsed from --help: its format changed?")
    text = uncomment(open(example, encoding="utf-8").read())
    present = keys(text)
    failures = [f"{y} (--{f}) is missing from {example}" for f, y, _ in table
                if y not in present]

    with tempfile.TemporaryDirectory() as tmp:
        token = os.path.join(tmp, "token")
        with open(token, "w", encoding="utf-8") as f:
            f.write("example-token\n")
        os.chmod(token, 0o600)
        # The health checks' files: only their kind and mode are checked at start.
        for name in ("check-ca.crt", "check-client.crt", "check-client.key", "check-auth"):
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                f.write("example\n")
            os.chmod(os.path.join(tmp, name), 0o600)
            text = text.replace("/etc/discovery/" + name, os.path.join(tmp, name))
        # Drop the tls: section (lines from "tls:" up to the next top-level line).
        text = re.sub(r"(?m)^tls:\n(?:[ #].*\n|\n)*?(?=^\S)", "", text)
        # And TLS to etcd, which needs an etcds:// cluster (the example's is off).
        text = re.sub(r"(?m)^cluster_(?:ca|cert|key):.*\n", "", text)
        text = text.replace("/etc/discovery/token", token)
        conf = os.path.join(tmp, "discoveryd.yaml")
        with open(conf, "w", encoding="utf-8") as f:
            f.write(text)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("SERVICE_") and k != "ENVIRONMENT"}
        r = subprocess.run([discoveryd, "--config", conf, "--print-config"], cwd=tmp,
                           env=env, capture_output=True, text=True)
    if r.returncode != 0 or r.stderr:
        sys.exit(f"the uncommented example does not load cleanly "
                 f"(exit {r.returncode}):\n{r.stderr}")
    effective = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^([a-z-]+)\s+(.*?)\s+(default|profile|file .*|env .*|flag .*)$", line)
        if m:
            effective[m.group(1)] = (m.group(2), m.group(3))
    for flag, yaml, default in table:
        if yaml.startswith("tls.") or yaml in ("cluster_ca", "cluster_cert", "cluster_key"):
            continue
        value, origin = effective.get(flag, (None, "absent"))
        if not origin.startswith("file"):
            failures.append(f"{yaml}: the example does not set it (origin: {origin})")
        elif default != "none" and "(" not in default and value != default:
            failures.append(f"{yaml}: the example says {value}, the default is {default}")
    for f in failures:
        print("FAIL:", f)
    if failures:
        sys.exit(1)
    print(f"ok: {len(table)} settings in {example}, each with its default")


if __name__ == "__main__":
    main()
