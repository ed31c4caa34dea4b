#!/usr/bin/env bash
# Runs the README's nngcat + protoc round trip against a real discoveryd, so
# the documented recipe is known to work. Usage: nngcat_example.sh DISCOVERYD PROTO_DIR
set -euo pipefail
discoveryd=$1
proto=$2
log=$(mktemp)
ready=$(mktemp)
# Its bound URLs come from --ready-fd (docs/ready-fd.md); the bound stretches
# by DISCOVERY_TEST_SLOWDOWN.
"$discoveryd" --listen tcp://127.0.0.1:0 --publish tcp://127.0.0.1:0 --data :memory: \
  --admin http://127.0.0.1:0 --ready-fd 3 2>"$log" 3>"$ready" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log" "$ready"' EXIT
for _ in $(seq 1 $((1000 * ${DISCOVERY_TEST_SLOWDOWN:-1}))); do
  grep -qx ready "$ready" && break
  sleep 0.01
done
url=$(sed -n 's/^listen //p' "$ready" | head -n 1)
pub=$(sed -n 's/^publish //p' "$ready")
grep -qx ready "$ready" && [ -n "$url" ] && [ -n "$pub" ] || { echo "discoveryd did not start"; cat "$log"; exit 1; }

t=$((2 * ${DISCOVERY_TEST_SLOWDOWN:-1})) # the README's 2 s, stretched
# --- the README recipe, with $url for the default REQ/REP address ---
enc() { protoc --proto_path="$proto" --encode=discovery.v1.Request discovery/v1/discovery.proto; }
dec() { protoc --proto_path="$proto" --decode=discovery.v1.Response discovery/v1/discovery.proto; }
echo 'register { service: "memory" endpoint: "http://127.0.0.1:9000" }' | enc |
  nngcat --req --connect "$url" --file /dev/stdin --raw --send-timeout $t --recv-timeout $t | dec
out=$(echo 'resolve { service: "memory" }' | enc |
  nngcat --req --connect "$url" --file /dev/stdin --raw --send-timeout $t --recv-timeout $t | dec)
# --- end of recipe ---

echo "$out"
grep -q 'endpoint: "http://127.0.0.1:9000"' <<<"$out" || { echo "FAIL: resolve did not return the endpoint"; exit 1; }
bad=$(echo 'resolve { service: "nope" }' | enc |
  nngcat --req --connect "$url" --file /dev/stdin --raw --send-timeout $t --recv-timeout $t | dec)
grep -q 'status: STATUS_NOT_FOUND' <<<"$bad" || { echo "FAIL: unknown service was not NOT_FOUND"; exit 1; }
# --- the README's subscription recipe: one event of service "memory" ---
evfile=$(mktemp)
nngcat --sub --connect "$pub" --subscribe "$(printf '\n\006memory')" --raw --count 1 --recv-timeout $((10 * ${DISCOVERY_TEST_SLOWDOWN:-1})) >"$evfile" &
sub=$!
# The subscriber connects in the background: register until it has seen one
# event (memory-cache must never reach it; it is registered each round too).
for i in $(seq 1 100); do
  for svc in memory-cache memory; do
    echo "register { service: \"$svc\" endpoint: \"http://127.0.0.1:$((9100 + i))\" }" | enc |
      nngcat --req --connect "$url" --file /dev/stdin --raw --send-timeout $t --recv-timeout $t >/dev/null
  done
  kill -0 $sub 2>/dev/null || break
  sleep 0.05
done
wait $sub || true
event=$(protoc --proto_path="$proto" --decode=discovery.v1.Event discovery/v1/discovery.proto <"$evfile")
rm -f "$evfile"
echo "$event"
grep -q '^service: "memory"$' <<<"$event" || { echo "FAIL: the subscription did not deliver a memory event"; exit 1; }
grep -q 'type: EVENT_REGISTERED' <<<"$event" || { echo "FAIL: not a REGISTERED event"; exit 1; }
echo "2 passed, 0 failed"
