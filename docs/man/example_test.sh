#!/usr/bin/env bash
# Runs libdiscovery(3)'s example program against a real discoveryd on
# loopback ports picked by the kernel: it registers memory at
# http://127.0.0.1:9000, resolves it and prints "ENDPOINT (HEALTH)".
# Usage: example_test.sh DISCOVERYD EXAMPLE
set -euo pipefail
discoveryd=$1
example=$2
log=$(mktemp)
out=$(mktemp)
"$discoveryd" --listen tcp://127.0.0.1:0 --publish tcp://127.0.0.1:0 --admin http://127.0.0.1:0 \
  --data :memory: 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log" "$out"' EXIT
for _ in $(seq 1 1000); do
  grep -q "publishing on" "$log" && break
  sleep 0.01
done
url=$(sed -n 's/.*listening on \(tcp:[^ ]*\).*/\1/p' "$log" | head -n 1)
pub=$(sed -n 's/.*publishing on \(tcp:[^ ]*\).*/\1/p' "$log" | head -n 1)
[ -n "$url" ] && [ -n "$pub" ] || { echo "discoveryd did not start"; cat "$log"; exit 1; }

MAN_EXAMPLE_SERVER=$url MAN_EXAMPLE_PUBLISH=$pub "$example" >"$out" || {
  echo "the example exited $?"; cat "$out" "$log"; exit 1; }
# Nothing answers on port 9000, so the health is unknown or already unhealthy.
grep -qE '^http://127\.0\.0\.1:9000 \((unknown|unhealthy)\)$' "$out" || {
  echo "unexpected output:"; cat "$out"; exit 1; }
echo "libdiscovery(3) example: $(head -n 1 "$out")"
