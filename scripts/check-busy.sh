#!/usr/bin/env bash
# The test suite must not depend on the machine being idle or its default
# ports being free. This runs the whole ctest of a build twice:
#   (a) while a discoveryd serves on the default ports (tcp://127.0.0.1:7700
#       and :7701, as scripts/serve.sh runs it) and something answers on
#       127.0.0.1:9000 (python3 -m http.server);
#   (b) the same, plus two busy loops loading two cores.
# It stops everything it started, whatever happens.
#
# Usage: scripts/check-busy.sh [BUILD_DIR]   (default build/plain, built already)
# Environment: DISCOVERY_TEST_SLOWDOWN for (b) (default 4; (a) runs with 1),
#              CHECK_BUSY_JOBS for ctest -j (default 1), CHECK_BUSY_PHASES ("a b").
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/plain}
slow=${DISCOVERY_TEST_SLOWDOWN:-4}
jobs=${CHECK_BUSY_JOBS:-1}
phases=${CHECK_BUSY_PHASES:-a b}
discoveryd=$build/src/discoveryd
[ -x "$discoveryd" ] || { echo "no $discoveryd: build first (see scripts/test.sh)"; exit 2; }
# Debian's interpreter, not a shim that would outlive being stopped.
py=$(command -v /usr/bin/python3 || command -v python3)

work=$(mktemp -d)
started=() # process group leaders we started (each runs under setsid)
cleanup() {
  for p in "${started[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null; done
  for p in "${started[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# bg CMD...: runs CMD in a process group of its own, remembered for cleanup.
bg() {
  setsid "$@" &
  started+=("$!")
}

echo "== discoveryd on its default ports (--data :memory:)"
bg "$discoveryd" --data :memory: --ready-fd 3 2>"$work/default.log" 3>"$work/default.ready"
for _ in $(seq 1 500); do
  grep -qx ready "$work/default.ready" && break
  kill -0 "${started[-1]}" 2>/dev/null || break
  sleep 0.02
done
if grep -qx ready "$work/default.ready"; then
  sed 's/^/   /' "$work/default.ready"
else
  # Something else holds them already (scripts/serve.sh?): that is the situation to test too.
  echo "   could not start it (ports taken already?):"
  sed 's/^/   /' "$work/default.log"
fi

echo "== something answering on 127.0.0.1:9000"
bg "$py" -m http.server 9000 --bind 127.0.0.1 >"$work/http.log" 2>&1
for _ in $(seq 1 500); do
  "$py" -c 'import socket; socket.create_connection(("127.0.0.1", 9000), 1)' 2>/dev/null && break
  sleep 0.02
done

failed=0
run_ctest() { # phase, slowdown
  echo "== ($1) ctest -j$jobs with DISCOVERY_TEST_SLOWDOWN=$2"
  if (cd "$build" && DISCOVERY_TEST_SLOWDOWN=$2 ctest --output-on-failure -j"$jobs"); then
    echo "== ($1) passed"
  else
    echo "== ($1) FAILED"
    failed=1
  fi
}

for phase in $phases; do
  case $phase in
  a) run_ctest a 1 ;;
  b)
    echo "== two busy loops"
    for _ in 1 2; do bg timeout 7200 sh -c 'while :; do :; done'; done
    run_ctest b "$slow"
    ;;
  *) echo "unknown phase $phase"; exit 2 ;;
  esac
done
[ "$failed" -eq 0 ] && echo "== all phases passed"
exit "$failed"
