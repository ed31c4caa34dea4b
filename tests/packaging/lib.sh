# shellcheck shell=bash
# Sourced by the packaging tests: a real discoveryd on loopback port 0.
# start_discoveryd DISCOVERYD: sets $url, $pub and $daemon_pid; stop_discoveryd ends it.
start_discoveryd() {
  daemon_log=$(mktemp)
  # Every port 0, the admin endpoint's too: a server on the defaults may hold 7700-7702.
  "$1" --listen tcp://127.0.0.1:0 --publish tcp://127.0.0.1:0 --admin http://127.0.0.1:0 \
    --data :memory: 2>"$daemon_log" &
  daemon_pid=$!
  local _
  # Ten seconds, stretched like the C tests by DISCOVERY_TEST_SLOWDOWN.
  for _ in $(seq 1 $((1000 * ${DISCOVERY_TEST_SLOWDOWN:-1}))); do
    grep -q "publishing on" "$daemon_log" && break
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.01
  done
  url=$(sed -n 's/.*listening on \(tcp:[^ ]*\).*/\1/p' "$daemon_log" | head -n 1)
  pub=$(sed -n 's/.*publishing on \(tcp:[^ ]*\).*/\1/p' "$daemon_log" | head -n 1)
  if [ -z "$url" ] || [ -z "$pub" ]; then
    echo "FAIL: discoveryd did not start"; cat "$daemon_log"; return 1
  fi
}

stop_discoveryd() {
  if [ -n "${daemon_pid:-}" ]; then
    kill "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
    daemon_pid=
  fi
  rm -f "${daemon_log:-}"
}
