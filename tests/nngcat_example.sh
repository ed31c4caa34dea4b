#!/usr/bin/env bash
# Runs the README's nngcat + protoc round trip against a real discoveryd, so
# the documented recipe is known to work. Usage: nngcat_example.sh DISCOVERYD PROTO_DIR
set -euo pipefail
discoveryd=$1
proto=$2
log=$(mktemp)
"$discoveryd" --listen tcp://127.0.0.1:0 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 500); do
  grep -q "listening on" "$log" && break
  sleep 0.01
done
url=$(sed -n 's/.*listening on \(tcp:[^ ]*\).*/\1/p' "$log" | head -n 1)
[ -n "$url" ] || { echo "discoveryd did not start"; cat "$log"; exit 1; }

# --- the README recipe, with $url for tcp://127.0.0.1:7700 ---
enc() { protoc --proto_path="$proto" --encode=discovery.v1.Request discovery/v1/discovery.proto; }
dec() { protoc --proto_path="$proto" --decode=discovery.v1.Response discovery/v1/discovery.proto; }
echo 'register { service: "memory" endpoint: "http://127.0.0.1:9000" }' | enc |
  nngcat --req --connect "$url" --file /dev/stdin --raw --send-timeout 2 --recv-timeout 2 | dec
out=$(echo 'resolve { service: "memory" }' | enc |
  nngcat --req --connect "$url" --file /dev/stdin --raw --send-timeout 2 --recv-timeout 2 | dec)
# --- end of recipe ---

echo "$out"
grep -q 'endpoint: "http://127.0.0.1:9000"' <<<"$out" || { echo "FAIL: resolve did not return the endpoint"; exit 1; }
bad=$(echo 'resolve { service: "nope" }' | enc |
  nngcat --req --connect "$url" --file /dev/stdin --raw --send-timeout 2 --recv-timeout 2 | dec)
grep -q 'status: STATUS_NOT_FOUND' <<<"$bad" || { echo "FAIL: unknown service was not NOT_FOUND"; exit 1; }
echo "1 passed, 0 failed"
