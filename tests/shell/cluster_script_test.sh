#!/usr/bin/env bash
# scripts/cluster.sh --check for real, plain and with --tls: 3 etcd members and
# 3 discoveryd nodes on free loopback ports, checked (one leader, a put read through every member,
# every node ready, a registration listed by every node) and stopped, with
# nothing left running. Exits 77 (skipped) without etcd.
# Usage: cluster_script_test.sh SOURCE_DIR DISCOVERYD DISCOVERYCTL
set -euo pipefail
src=$1
export DISCOVERYD=$2 DISCOVERYCTL=$3
etcd=${DISCOVERY_ETCD:-/usr/bin/etcd}
[ -x "$etcd" ] || { echo "SKIP: no etcd (install etcd-server: scripts/deps.sh test)"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp CLUSTER_WAIT=$((30 * ${DISCOVERY_TEST_SLOWDOWN:-1}))

# 15 distinct free ports (bound to port 0 together, then released). Another
# process may take one before the script binds it: the script then stops,
# naming the port, and the check is tried once more on new ports.
free_ports() {
  python3 -c '
import socket
s = [socket.socket() for _ in range(15)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))'
}

# Plain, then with TLS between the nodes and etcd (--tls).
for mode in "" --tls; do
  for attempt in 1 2; do
    read -r -a p <<<"$(free_ports)"
    export CLUSTER_ETCD_CLIENT_PORTS="${p[*]:0:3}" CLUSTER_ETCD_PEER_PORTS="${p[*]:3:3}"
    export CLUSTER_NODE_PORTS="${p[*]:6:9}"
    rv=0
    "$src/scripts/cluster.sh" --check $mode >"$tmp/out" 2>&1 || rv=$?
    cat "$tmp/out"
    [ $rv = 0 ] && break
    grep -q "already in use" "$tmp/out" && [ $attempt = 1 ] && continue
    echo "FAIL: scripts/cluster.sh --check $mode exited $rv"
    exit 1
  done
  grep -q "check passed" "$tmp/out" || { echo "FAIL: no 'check passed' ($mode)"; exit 1; }
done
grep -q "etcds\|https://" "$tmp/out" || { echo "FAIL: --tls did not use https://"; exit 1; }

# Its scratch directory is under $tmp: nothing of it may still run.
if pgrep -f "$tmp" >/dev/null; then
  echo "FAIL: processes left running:"
  pgrep -af "$tmp"
  for pid in $(pgrep -f "$tmp"); do kill -KILL "$pid" 2>/dev/null || true; done
  exit 1
fi
echo "ok"
