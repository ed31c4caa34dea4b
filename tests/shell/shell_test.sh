#!/usr/bin/env bash
# Runs clients/shell/discovery.sh (under dash, the POSIX shell, when there is
# one) against a real discoveryd. Paths come from ctest's environment:
# DISCOVERYD, DISCOVERY_SH, PROTO_DIR.
set -uo pipefail
: "${DISCOVERYD:?run through ctest}" "${DISCOVERY_SH:?}" "${PROTO_DIR:?}"

sh_bin=$(command -v dash || command -v sh)
work=$(mktemp -d)
log=$work/discoveryd.log
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 143" TERM INT

# Liveness bounds (loop counts) and TTLs stretch by DISCOVERY_TEST_SLOWDOWN, as in the C tests.
slow=${DISCOVERY_TEST_SLOWDOWN:-1}
ttl=$((60000 * slow)) # TTL instances the cases expect to stay

# start_daemon LOG ARGS...: discoveryd on ephemeral ports; sets $started_pid,
# $started_url and $started_pub from what it writes to --ready-fd (docs/ready-fd.md).
start_daemon() {
  local log=$1
  shift
  local ready=$log.ready
  "$DISCOVERYD" --listen tcp://127.0.0.1:0 --publish tcp://127.0.0.1:0 --admin http://127.0.0.1:0 \
    --data :memory: --log-level debug \
    --health-interval 0.1 --rise 1 --fall 1 --ready-fd 3 "$@" 2>"$log" 3>"$ready" &
  started_pid=$!
  pids+=("$started_pid")
  for _ in $(seq 1 $((1000 * slow))); do
    grep -qx ready "$ready" && break
    sleep 0.01
  done
  started_url=$(sed -n 's/^listen //p' "$ready" | head -n 1)
  started_pub=$(sed -n 's/^publish //p' "$ready")
  grep -qx ready "$ready" && [ -n "$started_url" ] && [ -n "$started_pub" ] ||
    { echo "discoveryd did not start"; cat "$log"; exit 1; }
}

# The calls go to one server. The watches use a second, quiet one (no SYNC
# for an hour): Debian 12's nng 1.5.2 can leak a message when a subscriber
# disconnects while the server publishes (nng issue #1713), which the
# sanitizer build's leak check would report, so watches end while their
# server publishes nothing, or after it has stopped.
start_daemon "$log" --sync-interval 0.2
daemon=$started_pid url=$started_url pub=$started_pub
quiet_log=$work/quiet.log
start_daemon "$quiet_log" --sync-interval 3600
quiet=$started_pid quiet_url=$started_url quiet_pub=$started_pub
export DISCOVERY_SERVER=$url DISCOVERY_PUBLISH=$pub DISCOVERY_PROTO=$PROTO_DIR

# ds ARGS...: runs the script; sets $out, $err and $rc.
ds() {
  out=$("$sh_bin" "$DISCOVERY_SH" "$@" 2>"$work/err")
  rc=$?
  err=$(cat "$work/err")
}

passed=0
failed=0
case_name=
fail() {
  echo "FAIL [$case_name]: $*"
  echo "  rc=$rc"
  echo "  stdout: $out"
  echo "  stderr: $err"
  case_ok=false
}
expect_rc() { [ "$rc" -eq "$1" ] || fail "exit status $rc, wanted $1${2:+ ($2)}"; }
expect_out() { [ "$out" = "$1" ] || fail "stdout is not: $1"; }
expect_err_has() { grep -qF -- "$1" <<<"$err" || fail "stderr lacks: $1"; }
run_case() {
  case_name=$1
  case_ok=true
  "$1"
  if $case_ok; then
    echo "ok   $1"
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
}

# Polls "ds ARGS" until its stdout is $1 (a liveness bound, no timing asserted).
ds_until() {
  local want=$1
  shift
  for _ in $(seq 1 $((300 * slow))); do
    ds "$@"
    [ "$out" = "$want" ] && return 0
    sleep 0.05
  done
  return 1
}

# A loopback port that refuses connections while this script runs: a socket
# bound to port 0 that never listens, held by a helper that ends with us (it
# watches our pid: python3 may be a shim, so killing $! may not reach it).
# No fixed port is assumed dead (something may answer on :1 or :9000).
dead_port_file=$work/dead.port
python3 -c 'import os, socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1], flush=True)
while os.path.exists("/proc/" + sys.argv[1]): time.sleep(0.1)' "$$" >"$dead_port_file" 2>/dev/null &
for _ in $(seq 1 1000); do [ -s "$dead_port_file" ] && break; sleep 0.01; done
dead_port=$(cat "$dead_port_file")
[ -n "$dead_port" ] || { echo "could not hold a dead port"; exit 1; }

port=${url##*:}
live="tcp://127.0.0.1:$port"      # the daemon's own port: a TCP check passes
dead="tcp://127.0.0.1:$dead_port" # bound, not listening: a TCP check fails

t_register_and_resolve() {
  ds register Shell_Svc "$live" --meta zone=b --meta 'q="x\y' --weight 2
  expect_rc 0
  expect_out "shell-svc $live unknown"
  ds resolve shell-svc
  expect_rc 0
  expect_out "$live"
  ds --text list shell-svc
  expect_rc 0
  grep -qF 'value: "\"x\\y"' <<<"$out" || fail "metadata did not round-trip"
  grep -qF 'weight: 2' <<<"$out" || fail "weight missing"
}

t_resolve_unknown() {
  ds resolve shell-nope
  expect_rc 1
  expect_out ""
  expect_err_has "STATUS_NOT_FOUND"
}

t_register_rejected() {
  ds register "bad name" http://127.0.0.1:9
  expect_rc 4
  expect_err_has "STATUS_INVALID_ARGUMENT"
  expect_err_has 'service name "bad name"'
  ds register shell-x http://127.0.0.1:9 --ttl-ms 5
  expect_rc 4
  expect_err_has "STATUS_INVALID_ARGUMENT"
}

t_health() {
  ds register shell-up "$live"
  ds_until healthy health shell-up || fail "shell-up never became healthy"
  expect_rc 0
  ds health shell-up "$live"
  expect_rc 0
  expect_out healthy
  ds register shell-down "$dead"
  ds_until unhealthy health shell-down || fail "shell-down never became unhealthy"
  expect_rc 1
  ds resolve shell-down --healthy-only
  expect_rc 1
  expect_err_has "STATUS_UNAVAILABLE"
  ds resolve shell-down
  expect_rc 0
  expect_out "$dead"
  ds health shell-nope
  expect_rc 1
  expect_err_has "STATUS_NOT_FOUND"
}

t_list() {
  ds register shell-list-b "$dead"
  ds register shell-list-a tcp://127.0.0.1:3
  ds register shell-list-a tcp://127.0.0.1:2
  ds list
  expect_rc 0
  got=$(grep '^shell-list-' <<<"$out" | cut -d' ' -f1,2)
  [ "$got" = "shell-list-a tcp://127.0.0.1:2
shell-list-a tcp://127.0.0.1:3
shell-list-b $dead" ] || fail "list is not sorted by (service, endpoint): $got"
  ds list shell-list-a
  [ "$(wc -l <<<"$out")" -eq 2 ] || fail "list SERVICE did not filter"
  ds list shell-list-nope
  expect_rc 0
  expect_out ""
}

t_heartbeat() {
  ds register shell-ttl "$dead" --ttl-ms "$ttl"
  expect_out "shell-ttl $dead unknown"
  ds heartbeat shell-ttl "$dead"
  expect_rc 0
  expect_out "shell-ttl $dead healthy"
  ds heartbeat shell-up "$live"
  expect_rc 4
  expect_err_has "STATUS_FAILED_PRECONDITION"
  ds heartbeat shell-ttl tcp://127.0.0.1:9
  expect_rc 1
  expect_err_has "STATUS_NOT_FOUND"
}

t_deregister() {
  for p in 11 12 13; do ds register shell-gone "tcp://127.0.0.1:$p"; done
  ds deregister shell-gone tcp://127.0.0.1:11
  expect_out "removed 1"
  ds deregister Shell_Gone
  expect_out "removed 2"
  ds deregister shell-gone
  expect_rc 0
  expect_out "removed 0"
  ds resolve shell-gone
  expect_rc 1
}

# wait_watch_line FILE PATTERN: polls until a line of FILE matches (grep -E).
wait_watch_line() {
  for _ in $(seq 1 $((600 * slow))); do
    grep -qE "$2" "$1" && return 0
    sleep 0.05
  done
  return 1
}

# On the quiet server: the watch of one service (and of a probe service,
# re-registered until the watch has connected) sees that service's events,
# and not those of a service whose name it prefixes.
t_watch_one_service() {
  local wout=$work/watch.out q=(--server "$quiet_url" --publish "$quiet_pub")
  "$sh_bin" "$DISCOVERY_SH" "${q[@]}" watch Shell_W shell-w-probe >"$wout" 2>"$work/watch.err" &
  local w=$!
  pids+=("$w")
  for i in $(seq 1 $((300 * slow))); do
    ds "${q[@]}" register shell-w-probe "$dead" --ttl-ms "$ttl" --weight "$i"
    grep -q ' shell-w-probe ' "$wout" && break
    sleep 0.1
  done
  ds "${q[@]}" register shell-w-x "$dead" --ttl-ms "$ttl" # prefix of nothing watched
  ds "${q[@]}" register shell-w "$dead" --ttl-ms "$ttl"
  ds "${q[@]}" heartbeat shell-w "$dead"
  ds "${q[@]}" deregister shell-w
  wait_watch_line "$wout" ' deregistered shell-w ' || fail "the watch never saw the deregistration"
  # The server stops first, then the watch (see start_daemon's callers).
  kill "$quiet"
  wait "$quiet"
  local qrc=$?
  kill "$w"
  wait "$w"
  rc=$?
  out=$(grep ' shell-w ' "$wout")
  err=$(cat "$work/watch.err")
  [ "$qrc" -eq 0 ] || fail "the quiet discoveryd exited with $qrc"
  expect_rc 143 "watch ended by SIGTERM"
  local want="registered shell-w $dead unknown
health_changed shell-w $dead unknown -> healthy (heartbeat)
deregistered shell-w $dead healthy"
  [ "$(cut -d' ' -f2- <<<"$out")" = "$want" ] || fail "watch did not print the three events"
  grep -q 'shell-w-x' "$wout" && fail "another service's event reached the watch"
}

# On the quiet server: --count ends the watch after that many events.
t_watch_count() {
  local wout=$work/count.out q=(--server "$quiet_url" --publish "$quiet_pub")
  "$sh_bin" "$DISCOVERY_SH" "${q[@]}" watch shell-c --count 1 >"$wout" 2>"$work/count.err" &
  local w=$!
  pids+=("$w")
  for i in $(seq 1 $((300 * slow))); do
    kill -0 "$w" 2>/dev/null || break
    ds "${q[@]}" register shell-c "$dead" --ttl-ms "$ttl" --weight "$i"
    sleep 0.1
  done
  wait "$w"
  rc=$?
  out=$(cat "$wout")
  err=$(cat "$work/count.err")
  expect_rc 0
  grep -qE "^[0-9]+ (registered|updated) shell-c $dead unknown$" <<<"$out" ||
    fail "not one registered/updated line"
}

# On the quiet server: --idle ends a watch that receives nothing.
t_watch_idle() {
  ds --publish "$quiet_pub" watch shell-quiet --count 1 --idle 1
  expect_rc 1
  expect_err_has "0 of 1 events"
}

t_unreachable() {
  ds --server "$dead" resolve x
  expect_rc 3
  # The PUB socket never answers a REQ: nngcat's send times out.
  ds --server "$pub" --timeout 1 resolve x
  expect_rc 3
  ds --publish "$dead" watch
  expect_rc 3
}

t_usage() {
  ds frob
  expect_rc 2
  ds resolve
  expect_rc 2
  ds register a
  expect_rc 2
  ds register a http://h:1 --meta novalue
  expect_rc 2
  ds --timeout 0.5 resolve a
  expect_rc 2
  ds watch "bad name"
  expect_rc 2
}

# The token convention (docs/clients.md): a file only its owner reads, or
# SERVICE_DISCOVERY_API_KEY; never the secret on the command line.
t_token() {
  local tf=$work/token
  printf 's3cr"et\n' >"$tf"
  chmod 600 "$tf"
  ds --token-file "$tf" resolve shell-svc
  expect_rc 0
  expect_out "$live"
  SERVICE_DISCOVERY_API_KEY='s3cr"et' ds resolve shell-svc
  expect_rc 0
  DISCOVERY_TOKEN=old ds resolve shell-svc
  expect_rc 0
  expect_err_has "DISCOVERY_TOKEN is deprecated"
  ds --token 's3cr"et' resolve shell-svc
  expect_rc 2
  expect_err_has "use --token-file FILE or SERVICE_DISCOVERY_API_KEY"
  chmod 640 "$tf"
  ds --token-file "$tf" resolve shell-svc
  expect_rc 2
  expect_err_has "readable by group or others (mode 640)"
  chmod 604 "$tf"
  ds --token-file "$tf" resolve shell-svc
  expect_rc 2
  printf 'a\000b' >"$tf" && chmod 600 "$tf"
  ds --token-file "$tf" resolve shell-svc
  expect_rc 2
  expect_err_has "NUL"
  : >"$tf"
  ds --token-file "$tf" resolve shell-svc
  expect_rc 2
  expect_err_has "empty"
  head -c 4095 /dev/zero | tr '\000' a >"$tf"
  ds --token-file "$tf" resolve shell-svc
  expect_rc 0
  head -c 4096 /dev/zero | tr '\000' a >"$tf"
  ds --token-file "$tf" resolve shell-svc
  expect_rc 2
  expect_err_has "too large"
  ds --token-file "$work" resolve shell-svc
  expect_rc 2
  expect_err_has "not a regular file"
  ds --token-file "$work/missing" resolve shell-svc
  expect_rc 2
}

# The token, read from its file, authenticates against a server that requires it.
t_token_auth() {
  local tf=$work/auth-token
  printf 'right-token\n' >"$tf"
  chmod 600 "$tf"
  start_daemon "$work/auth.log" --token-file "$tf"
  local a_url=$started_url a_pid=$started_pid
  ds --server "$a_url" --token-file "$tf" register authd http://127.0.0.1:9 --ttl-ms 60000
  expect_rc 0
  SERVICE_DISCOVERY_API_KEY=wrong ds --server "$a_url" register authd http://127.0.0.1:9 --ttl-ms 60000
  expect_rc 4
  kill "$a_pid"
  wait "$a_pid"
}

# Every example of docs/clients.md's shell section, run as written (the
# first ```sh block after "### Shell"), with the test servers' URLs.
t_docs_examples() {
  local docs=$PROTO_DIR/../docs/clients.md block=$work/docs-example.sh
  awk '/^### Shell/ { s = 1 } s && /^```sh$/ { inb = 1; next } inb && /^```$/ { exit } inb { print }' \
    "$docs" | sed -e "s#tcp://127.0.0.1:7700#$url#g" -e "s#tcp://127.0.0.1:7701#$pub#g" \
    -e "s#clients/shell/discovery.sh#$sh_bin $DISCOVERY_SH#g" >"$block"
  [ -s "$block" ] || { fail "no shell example in $docs"; return; }
  out=$(cd "$work" && DISCOVERY_PROTO=$PROTO_DIR bash -e "$block" 2>&1)
  rc=$?
  expect_rc 0 "the documented example: $(cat "$block")"
  grep -q "removed 1" <<<"$out" || fail "the example's deregister"
}

# clients/README-clients.md's raw one-liners, with the test servers' URLs
# for the default REQ/REP and PUB addresses, and the held dead port for the
# README's example endpoint.
t_readme_recipes() {
  local proto=$PROTO_DIR
  # --- the README's call recipe ---
  enc() { protoc --proto_path="$proto" --encode=discovery.v1.Request discovery/v1/discovery.proto; }
  dec() { protoc --proto_path="$proto" --decode=discovery.v1.Response discovery/v1/discovery.proto; }
  call() { enc | nngcat --req --connect "$url" --file /dev/stdin --raw \
                        --send-timeout 5 --recv-timeout 5 | dec; }
  local ep="http://127.0.0.1:$dead_port"
  out=$(echo 'register { service: "memory" endpoint: "'"$ep"'" metadata { key: "zone" value: "a" } }' | call)
  grep -q '^    endpoint: "'"$ep"'"$' <<<"$out" || fail "register recipe"
  out=$(echo 'resolve { service: "memory" healthy_only: true }' | call)
  grep -q '^status: STATUS_UNAVAILABLE$' <<<"$out" || fail "resolve recipe (nothing answers on $ep)"
  out=$(echo 'deregister { service: "memory" }' | call)
  grep -q '^  removed: 1$' <<<"$out" || fail "deregister recipe"
  # --- the README's stream recipe, on the quiet server; it ends 3 s after its last event ---
  decev() { protoc --proto_path="$proto" --decode=discovery.v1.Event discovery/v1/discovery.proto; }
  hex2bin() { awk 'function h(c) { return index("0123456789abcdef", c) - 1 }
    { gsub(/["\\x]/, ""); for (i = 1; i < length($0); i += 2) printf "\\%03o", h(substr($0, i, 1)) * 16 + h(substr($0, i + 1, 1)) }'; }
  local sout=$work/stream.out
  nngcat --sub --connect "$quiet_pub" --subscribe "$(printf '\n\006memory')" \
      --subscribe "$(printf '\020\005')" --hex --recv-timeout 3 |
    while IFS= read -r line; do printf "$(printf '%s\n' "$line" | hex2bin)" | decev; echo; done >"$sout" &
  local s=$!
  pids+=("$s")
  for i in $(seq 1 $((300 * slow))); do
    "$sh_bin" "$DISCOVERY_SH" --server "$quiet_url" register memory "$dead" --ttl-ms "$ttl" --weight "$i" >/dev/null
    grep -q '^service: "memory"$' "$sout" && break
    sleep 0.1
  done
  wait "$s"
  out=$(cat "$sout")
  grep -q '^  endpoint: "'"$dead"'"$' <<<"$out" || fail "stream recipe did not decode an event"
}

# t_watch_one_service stops the quiet server: it runs last of the watches.
for t in t_register_and_resolve t_resolve_unknown t_register_rejected t_health t_list \
  t_heartbeat t_deregister t_unreachable t_usage t_token t_token_auth t_docs_examples t_readme_recipes t_watch_count \
  t_watch_idle t_watch_one_service; do
  run_case "$t"
done

kill "$daemon" "$quiet" 2>/dev/null
wait "$daemon"
drc=$?
pids=()
if [ "$drc" -ne 0 ]; then
  echo "FAIL: discoveryd exited with $drc"
  failed=$((failed + 1))
fi
if [ "$failed" -ne 0 ]; then
  echo "---- discoveryd log ----"
  cat "$log"
  echo "---- quiet discoveryd log ----"
  cat "$quiet_log"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
