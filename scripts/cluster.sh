#!/usr/bin/env bash
# Cluster mode on one machine: 3 etcd members and 3 discoveryd nodes on
# loopback (docs/cluster-operations.md). A demonstration and a developer's
# setup, not a production layout: every process is on 127.0.0.1.
#
# Usage: scripts/cluster.sh [start] [--detach] [--etcd-only] [--fresh] [--tls]
#        scripts/cluster.sh stop | status
#        scripts/cluster.sh --check [--etcd-only] [--tls]
#   start      (the default) starts everything, prints the URLs and stays in
#              the foreground; Ctrl-C stops everything. --detach returns once
#              all is ready (then `scripts/cluster.sh stop`).
#   stop       stops what a start left running (from its pid files).
#   status     each process and each etcd member's view (leader, revision).
#   --check    starts a fresh cluster in a scratch directory of its own,
#              checks it (every member serves, one leader, a write through
#              member 1 read through the others, every node ready), stops
#              it, and exits 0 or 1.
#   --etcd-only  the etcd members only.
#   --fresh    wipe the data of an earlier start first (kept by default).
#   --tls      TLS between discoveryd and etcd: a throwaway CA, etcd's certificate
#              and a client certificate (openssl, in DIR/tls), etcd with
#              --client-cert-auth, the nodes on etcds:// with --cluster-ca,
#              --cluster-cert and --cluster-key. Peers stay plain (loopback).
#
# Environment (defaults in brackets); node i (0, 1, 2) uses base + i, or base + 10*i:
#   CLUSTER_DIR               [${TMPDIR:-/tmp}/discovery-cluster]  data, logs, pid files
#   CLUSTER_ETCD_CLIENT_BASE  [23790]  member i's client URL http://127.0.0.1:(base+i)
#   CLUSTER_ETCD_PEER_BASE    [23800]  member i's peer URL
#   CLUSTER_NODE_BASE         [7710]   node i: REQ/REP base+10i, PUB +1, admin HTTP +2
#                                      (7710..7732: clear of serve.sh's 7700-7702)
#   CLUSTER_ETCD_CLIENT_PORTS, CLUSTER_ETCD_PEER_PORTS, CLUSTER_NODE_PORTS
#                             [none]   explicit space-separated ports instead of the bases
#                                      (3, 3 and 9: node0's REQ/REP, PUB, admin, then node1's...)
#   CLUSTER_PREFIX            [/discovery/v1/]  --cluster-prefix
#   CLUSTER_WAIT              [30]     seconds to wait for each process to be ready
#   CLUSTER_TLS               [0]      1: as --tls
#   DISCOVERY_ETCD            [/usr/bin/etcd]   the etcd binary (Debian: etcd-server)
#   DISCOVERYD                [built like scripts/serve.sh, build/release]
#   DISCOVERYCTL              [next to DISCOVERYD: ../clients/discoveryctl]  for --check
set -euo pipefail
# Paths named relative to the caller's directory, made absolute before leaving it.
for v in DISCOVERYD DISCOVERYCTL DISCOVERY_ETCD CLUSTER_DIR; do
  [ -z "${!v:-}" ] || export "$v=$(realpath -m "${!v}")"
done
cd "$(dirname "$0")/.."

N=3
dir=${CLUSTER_DIR:-${TMPDIR:-/tmp}/discovery-cluster}
cbase=${CLUSTER_ETCD_CLIENT_BASE:-23790}
pbase=${CLUSTER_ETCD_PEER_BASE:-23800}
nbase=${CLUSTER_NODE_BASE:-7710}
prefix=${CLUSTER_PREFIX:-/discovery/v1/}
wait_s=${CLUSTER_WAIT:-30}
etcd=${DISCOVERY_ETCD:-/usr/bin/etcd}
tls=${CLUSTER_TLS:-0}

say() { echo "cluster: $*"; }
die() { echo "cluster: $*" >&2; exit 1; }

cmd=start detach=0 etcd_only=0 fresh=0
for a in "$@"; do
  case "$a" in
    start|stop|status) cmd=$a ;;
    --check|check) cmd=check ;;
    --detach|-d) detach=1 ;;
    --etcd-only) etcd_only=1 ;;
    --fresh) fresh=1 ;;
    --tls) tls=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$a' (try --help)" ;;
  esac
done
for v in cbase pbase nbase wait_s; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, not '${!v}'"
done
if [ "$cmd" = check ]; then
  # A scratch directory of its own: never touches a running or kept cluster's data.
  dir=$(mktemp -d "${TMPDIR:-/tmp}/discovery-cluster-check.XXXXXX")
  fresh=1
fi
run=$dir/run
certs=$dir/tls
# status and stop of a --tls start: the data says how it was made.
if [ "$cmd" = status ] && grep -q https:// "$dir/cluster.conf" 2>/dev/null; then tls=1; fi
scheme=http
[ "$tls" = 1 ] && scheme=https

# Explicit port lists, when given, win over the bases (the test picks free ports this way).
read -r -a cports <<<"${CLUSTER_ETCD_CLIENT_PORTS:-}"
read -r -a pports <<<"${CLUSTER_ETCD_PEER_PORTS:-}"
read -r -a nports <<<"${CLUSTER_NODE_PORTS:-}"
[ ${#cports[@]} = 0 ] || [ ${#cports[@]} = $N ] || die "CLUSTER_ETCD_CLIENT_PORTS needs $N ports"
[ ${#pports[@]} = 0 ] || [ ${#pports[@]} = $N ] || die "CLUSTER_ETCD_PEER_PORTS needs $N ports"
[ ${#nports[@]} = 0 ] || [ ${#nports[@]} = $((3 * N)) ] || die "CLUSTER_NODE_PORTS needs $((3 * N)) ports"
client_port() { echo "${cports[$1]:-$((cbase + $1))}"; }
peer_port() { echo "${pports[$1]:-$((pbase + $1))}"; }
node_port() { echo "${nports[3 * $1 + $2]:-$((nbase + 10 * $1 + $2))}"; } # $2: 0 REQ/REP, 1 PUB, 2 admin
client_url() { echo "$scheme://127.0.0.1:$(client_port "$1")"; }
# curl to etcd; with --tls it trusts the throwaway CA and presents the client certificate.
ecurl() {
  if [ "$tls" = 1 ]; then curl --cacert "$certs/ca.crt" --cert "$certs/client.crt" --key "$certs/client.key" "$@"
  else curl "$@"; fi
}
endpoints() { local i s=""; for ((i = 0; i < N; i++)); do s+="${s:+,}$(client_url $i)"; done; echo "$s"; }
# discoveryd's --cluster: etcd://host:port,host:port,... (etcds:// with --tls)
cluster_flag() {
  local i s=""
  for ((i = 0; i < N; i++)); do s+="${s:+,}127.0.0.1:$(client_port $i)"; done
  if [ "$tls" = 1 ]; then echo "etcds://$s"; else echo "etcd://$s"; fi
}

# The throwaway CA, etcd's certificate (for 127.0.0.1) and the nodes' client certificate.
make_certs() {
  [ -f "$certs/client.key" ] && return 0
  command -v openssl >/dev/null || die "--tls needs the openssl command line tool"
  mkdir -p "$certs"
  # (set -e does not hold inside a command followed by ||: each step is chained.)
  (
    cd "$certs" \
      && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
        -out ca.crt -days 30 -subj /CN=discovery-cluster-ca \
      && echo "subjectAltName=IP:127.0.0.1" >san.ext \
      && for n in etcd client; do
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $n.key \
          -out $n.csr -subj /CN=$n \
          && openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $n.crt \
            -days 30 -extfile san.ext || exit 1
      done \
      && chmod 600 ./*.key
  ) >"$certs/openssl.log" 2>&1 || die "cannot make the TLS certificates (see $certs/openssl.log)"
}
servers() { local i s=""; for ((i = 0; i < N; i++)); do s+="${s:+,}tcp://127.0.0.1:$(node_port $i 0)"; done; echo "$s"; }

# Whether something accepts connections on 127.0.0.1:$1.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Whether pid $1 is a live process (not gone, not a zombie waiting to be reaped).
running() { local st; st=$(cat "/proc/$1/stat" 2>/dev/null) && [[ ${st##*) } != Z* ]]; }

# pid of a pid file if that process still runs the expected program ($2), else nothing.
live_pid() {
  local f=$run/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$2" \
    && echo "$pid"
}

names() { local i; for ((i = 0; i < N; i++)); do echo "node$i discoveryd"; done
          for ((i = 0; i < N; i++)); do echo "etcd$i etcd"; done; }

# Stops every live process of kind $1 (discoveryd or etcd) one at a time (TERM, SIGKILL
# after 10 s): an etcd leader that stops hands leadership over first, and waits out the
# election timeout in vain if every follower is stopping too. Prints how many it stopped.
stop_kind() {
  local name prog pid n=0 t
  while read -r name prog; do
    [ "$prog" = "$1" ] || continue
    if pid=$(live_pid "$name" "$prog"); then
      kill -CONT "$pid" 2>/dev/null || true # a stopped one would not see TERM
      kill -TERM "$pid" 2>/dev/null || true
      for ((t = 0; t < 100; t++)); do running "$pid" || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      n=$((n + 1))
    fi
    rm -f "$run/$name.pid"
  done < <(names)
  echo $n
}

stop_all() {
  [ -d "$run" ] || return 0
  # The nodes first: they leave the cluster (their leases) while etcd still runs.
  local nodes members
  nodes=$(stop_kind discoveryd)
  members=$(stop_kind etcd)
  [ $((nodes + members)) = 0 ] || say "stopped $nodes discoveryd nodes and $members etcd members"
}

# etcd's status of member $1 as "leader=<id> member=<id> revision=<n>", or nothing.
member_status() {
  ecurl -s -m 2 -X POST "$(client_url "$1")/v3/maintenance/status" -d '{}' 2>/dev/null \
    | sed -n 's/.*"member_id":"\([0-9]*\)".*"revision":"\([0-9]*\)".*"leader":"\([0-9]*\)".*/leader=\3 member=\1 revision=\2/p'
}

show_status() {
  local name prog pid i
  while read -r name prog; do
    if pid=$(live_pid "$name" "$prog"); then echo "  $name: running (pid $pid)"
    else echo "  $name: not running"; fi
  done < <(names)
  for ((i = 0; i < N; i++)); do
    echo "  etcd$i $(client_url $i): $(member_status $i || true)"
  done
}

# Waits until $1 (a function of no arguments) succeeds, while pid $2 lives; $3 names it.
wait_for() {
  local check=$1 pid=$2 what=$3 deadline=$((SECONDS + wait_s))
  until $check; do
    if ! running "$pid"; then
      local st=0
      wait "$pid" 2>/dev/null || st=$?
      echo "cluster: $what exited (status $st) before it was ready; the end of its log:" >&2
      return 2
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "cluster: $what was not ready within ${wait_s} s (CLUSTER_WAIT); the end of its log:" >&2
      return 1
    fi
    sleep 0.2
  done
}

start_etcd() {
  local i p initial="" token
  [ -x "$etcd" ] || die "no etcd at $etcd: install Debian's etcd-server (scripts/deps.sh test) or set DISCOVERY_ETCD"
  for ((i = 0; i < N; i++)); do initial+="${initial:+,}etcd$i=http://127.0.0.1:$(peer_port $i)"; done
  # The peer list and ports are fixed when the data is made: refuse data made with others.
  if [ -f "$dir/cluster.conf" ] && [ "$(cat "$dir/cluster.conf")" != "$initial $(endpoints)" ]; then
    die "the data in $dir was made with other ports (or with/without --tls); use --fresh to start over, or the same settings"
  fi
  echo "$initial $(endpoints)" >"$dir/cluster.conf"
  token="discovery-$(cksum <"$dir/cluster.conf" | cut -d' ' -f1)"
  for ((i = 0; i < N; i++)); do
    for p in $(client_port $i) $(peer_port $i); do
      listening "$p" && die "port $p is already in use (set CLUSTER_ETCD_CLIENT_BASE / CLUSTER_ETCD_PEER_BASE)"
    done
  done
  local tls_flags=()
  if [ "$tls" = 1 ]; then
    tls_flags=(--cert-file "$certs/etcd.crt" --key-file "$certs/etcd.key"
      --trusted-ca-file "$certs/ca.crt" --client-cert-auth)
  fi
  for ((i = 0; i < N; i++)); do
    local c pp
    c=$(client_port $i)
    pp=$(peer_port $i)
    mkdir -p "$dir/etcd$i"
    # --pre-vote: a member that returns does not depose a working leader.
    # Compaction keeps an hour of history, so a node cut off for less resumes its watch.
    # Progress notifications every 5 s let discoveryd tell an idle watch from a stalled one.
    # Election timeout 1500 ms (etcd: 1000): tolerant of a busy laptop; see the guide.
    setsid "$etcd" --name "etcd$i" --data-dir "$dir/etcd$i/data" \
      --listen-client-urls "$scheme://127.0.0.1:$c" --advertise-client-urls "$scheme://127.0.0.1:$c" \
      --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
      --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token "$token" \
      --pre-vote=true --heartbeat-interval 100 --election-timeout 1500 \
      --auto-compaction-mode periodic --auto-compaction-retention 1h \
      --quota-backend-bytes $((2 * 1024 * 1024 * 1024)) \
      --experimental-watch-progress-notify-interval 5s "${tls_flags[@]}" \
      >>"$dir/etcd$i/etcd.log" 2>&1 </dev/null &
    echo $! >"$run/etcd$i.pid"
  done
  for ((i = 0; i < N; i++)); do
    local pid
    pid=$(cat "$run/etcd$i.pid")
    # etcd says so once it has joined a cluster that has a leader.
    etcd_ready() { ecurl -sf -m 2 "$(client_url "$i")/health" 2>/dev/null | grep -q '"health":"true"'; }
    if ! wait_for etcd_ready "$pid" "etcd member etcd$i"; then
      tail -n 20 "$dir/etcd$i/etcd.log" >&2
      return 1
    fi
  done
  say "etcd: $N members ready: $(endpoints)"
}

find_discoveryd() {
  if [ -n "${DISCOVERYD:-}" ]; then
    [ -x "$DISCOVERYD" ] || die "DISCOVERYD=$DISCOVERYD is not executable"
    echo "$DISCOVERYD"
    return
  fi
  scripts/deps.sh runtime
  cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
  cmake --build build/release -j2 --target discoveryd discoveryctl >/dev/null
  echo "$PWD/build/release/src/discoveryd"
}

start_nodes() {
  local bin=$1 i p
  for ((i = 0; i < N; i++)); do
    for p in $(node_port $i 0) $(node_port $i 1) $(node_port $i 2); do
      listening "$p" && die "port $p is already in use (set CLUSTER_NODE_BASE)"
    done
  done
  local tls_flags=()
  if [ "$tls" = 1 ]; then
    tls_flags=(--cluster-ca "$certs/ca.crt" --cluster-cert "$certs/client.crt"
      --cluster-key "$certs/client.key")
  fi
  for ((i = 0; i < N; i++)); do
    mkdir -p "$dir/node$i"
    # The working directory is the node's own: nothing lands where the script was run.
    (cd "$dir/node$i" && exec setsid "$bin" --cluster "$(cluster_flag)" --node-name "node$i" \
      --cluster-prefix "$prefix" --listen "tcp://127.0.0.1:$(node_port $i 0)" \
      --publish "tcp://127.0.0.1:$(node_port $i 1)" --admin "http://127.0.0.1:$(node_port $i 2)" \
      "${tls_flags[@]}" >>"$dir/node$i/discoveryd.log" 2>&1 </dev/null) &
    echo $! >"$run/node$i.pid"
  done
  for ((i = 0; i < N; i++)); do
    local pid rv=0
    pid=$(cat "$run/node$i.pid")
    node_ready() { curl -sf -m 2 -o /dev/null "http://127.0.0.1:$(node_port "$i" 2)/readyz"; }
    wait_for node_ready "$pid" "discoveryd node$i" || rv=$?
    if [ $rv != 0 ]; then
      tail -n 20 "$dir/node$i/discoveryd.log" >&2
      if grep -q 'unknown option "--cluster' "$dir/node$i/discoveryd.log"; then
        echo "cluster: this discoveryd ($bin) has no cluster mode yet (--cluster, --node-name," \
          "--cluster-prefix: issue 16); run with --etcd-only for the etcd half" >&2
      fi
      return 1
    fi
  done
  say "discoveryd: $N nodes ready"
}

print_urls() {
  local i
  echo "etcd endpoints:   $(endpoints)"
  if [ $etcd_only = 0 ]; then
    for ((i = 0; i < N; i++)); do
      echo "node$i:            tcp://127.0.0.1:$(node_port $i 0)  events tcp://127.0.0.1:$(node_port $i 1)" \
        " admin http://127.0.0.1:$(node_port $i 2)"
    done
    echo "clients:          --server $(servers)"
  fi
  [ "$tls" = 1 ] && echo "TLS to etcd:      CA $certs/ca.crt, client $certs/client.crt and .key"
  echo "data and logs:    $dir"
}

# A put through member 0, read through every member: base64 as the gateway wants it.
check_etcd() {
  local key val i got leaders
  key=$(printf '%s' "${prefix}cluster-check" | base64 -w0)
  val=$(printf '%s' "ok $$" | base64 -w0)
  ecurl -sf -m 5 -X POST "$(client_url 0)/v3/kv/put" -d "{\"key\":\"$key\",\"value\":\"$val\"}" >/dev/null \
    || { echo "cluster: check: a put through etcd0 failed" >&2; return 1; }
  for ((i = 0; i < N; i++)); do
    got=$(ecurl -sf -m 5 -X POST "$(client_url $i)/v3/kv/range" -d "{\"key\":\"$key\"}" || true)
    grep -q "\"value\":\"$val\"" <<<"$got" \
      || { echo "cluster: check: etcd$i does not read the put back: $got" >&2; return 1; }
  done
  ecurl -sf -m 5 -X POST "$(client_url 0)/v3/kv/deleterange" -d "{\"key\":\"$key\"}" >/dev/null || true
  leaders=$(for ((i = 0; i < N; i++)); do member_status $i | sed 's/ .*//'; done | sort -u)
  if [ -z "$leaders" ] || [ "$(wc -l <<<"$leaders")" != 1 ] || [ "$leaders" = leader=0 ]; then
    echo "cluster: check: the members do not agree on a leader: $leaders" >&2
    return 1
  fi
  say "check: etcd: one leader, a put through etcd0 read through all $N members"
}

check_nodes() {
  local i
  for ((i = 0; i < N; i++)); do
    curl -sf -m 5 -o /dev/null "http://127.0.0.1:$(node_port $i 2)/healthz" \
      || { echo "cluster: check: node$i is not healthy" >&2; return 1; }
  done
  say "check: discoveryd: $N nodes healthy"
  # A registration through node0, seen by every node (they apply it from etcd's watch).
  local ctl=${DISCOVERYCTL:-$(dirname "$(dirname "$1")")/clients/discoveryctl} out
  if [ ! -x "$ctl" ]; then
    say "check: no discoveryctl at $ctl (set DISCOVERYCTL): registration not checked"
    return 0
  fi
  "$ctl" --server "tcp://127.0.0.1:$(node_port 0 0)" register cluster-check http://127.0.0.1:1 >/dev/null \
    || { echo "cluster: check: register through node0 failed" >&2; return 1; }
  for ((i = 0; i < N; i++)); do
    local deadline=$((SECONDS + wait_s))
    until out=$("$ctl" --server "tcp://127.0.0.1:$(node_port $i 0)" list cluster-check 2>&1) \
      && grep -q "http://127.0.0.1:1" <<<"$out"; do
      if [ $SECONDS -ge $deadline ]; then
        echo "cluster: check: node$i does not list the instance registered through node0: $out" >&2
        return 1
      fi
      sleep 0.2
    done
  done
  "$ctl" --server "tcp://127.0.0.1:$(node_port 0 0)" deregister cluster-check >/dev/null || true
  say "check: discoveryd: registered through node0, listed by all $N nodes"
}

bin=""
start() {
  local name prog
  while read -r name prog; do
    live_pid "$name" "$prog" >/dev/null \
      && die "already running from $dir (scripts/cluster.sh stop first)"
  done < <(names)
  [ $etcd_only = 1 ] || bin=$(find_discoveryd)
  [ $fresh = 1 ] && rm -rf "${dir:?}/etcd"[0-9] "${dir:?}/node"[0-9] "$dir/cluster.conf" "$certs"
  mkdir -p "$run"
  [ "$tls" = 1 ] && make_certs
  start_etcd || return 1
  [ $etcd_only = 1 ] || start_nodes "$bin" || return 1
}

case "$cmd" in
  stop) stop_all ;;
  status) show_status ;;
  check)
    trap 'stop_all >/dev/null; rm -rf "$dir"' EXIT
    trap 'exit 130' INT TERM
    start || exit 1
    check_etcd || exit 1
    [ $etcd_only = 1 ] || check_nodes "$bin" || exit 1
    say "check passed"
    ;;
  start)
    trap 'stop_all' EXIT # until everything is up, a failure stops what did start
    trap 'exit 130' INT TERM
    if [ $detach = 1 ]; then
      start || exit 1
      trap - EXIT INT TERM
      print_urls
      echo "stop with: scripts/cluster.sh stop"
      exit 0
    fi
    start || exit 1
    print_urls
    echo "Ctrl-C (or scripts/cluster.sh stop) stops everything."
    reported=""
    while :; do
      alive=0
      while read -r name prog; do
        [ $etcd_only = 1 ] && [ "$prog" = discoveryd ] && continue
        if live_pid "$name" "$prog" >/dev/null; then alive=1
        elif [[ " $reported " != *" $name "* ]]; then
          say "$name is no longer running (its log: $dir/$name/)"
          reported+=" $name"
        fi
      done < <(names)
      [ $alive = 1 ] || { say "nothing left running"; exit 0; }
      sleep 1
    done
    ;;
esac
