#!/bin/sh
# discovery.sh: a discoveryd client in POSIX sh, built only on protoc
# (--encode/--decode against proto/discovery/v1/discovery.proto) and nngcat.
# Each call is the README's one-liner: a text-format Request, encoded by
# protoc, sent by nngcat --req, the reply decoded by protoc.
#
# nngcat's quirks, handled here: a receive timeout exits 0 with no output
# (so an empty reply means "no answer"); a REQ send with nothing connected
# waits forever unless --send-timeout is given; an unreachable address makes
# nngcat exit 1 at once; timeouts are whole seconds; --raw SUB output has no
# framing, so watch reads --hex lines (one message each) and turns them back
# into bytes for protoc.
#
# Exit status (as discoveryctl's): 0 success (health: healthy); 1 not
# found, not healthy, no healthy instance; 2 usage; 3 no answer from the
# server; 4 the server rejected the request; 5 local failure.

usage() {
	cat <<'EOF'
usage: discovery.sh [--server URL] [--publish URL] [--timeout SECONDS] [--token-file FILE]
                    [--proto DIR] [--text] COMMAND [ARGS]
  register SERVICE ENDPOINT [--meta KEY=VALUE]... [--health-path PATH] [--ttl-ms N] [--weight N]
  resolve SERVICE [--healthy-only]      prints the endpoint alone, for $(...)
  deregister SERVICE [ENDPOINT]         prints "removed N"
  health SERVICE [ENDPOINT]             prints healthy|unhealthy|unknown; exit 0 when healthy
  list [SERVICE]                        one "SERVICE ENDPOINT HEALTH" line per instance
  heartbeat SERVICE ENDPOINT
  watch [SERVICE]... [--count N] [--idle SECONDS] [--sync]
                                        one line per event: REVISION TYPE SERVICE ENDPOINT
                                        [PREVIOUS ->] HEALTH [(REASON)]
--server defaults to $DISCOVERY_SERVER or tcp://127.0.0.1:7700, --publish to
$DISCOVERY_PUBLISH or tcp://127.0.0.1:7701, --timeout to 5 (whole seconds),
--proto to $DISCOVERY_PROTO or the proto/ directory of this repository. The auth
token comes from --token-file FILE (readable by its owner only) or else from
$SERVICE_DISCOVERY_API_KEY, never from the command line. --text prints protoc's
text format of each reply or event.
EOF
}

die() { # status, message
	printf 'discovery.sh: %s\n' "$2" >&2
	exit "$1"
}

usage_error() {
	printf 'discovery.sh: %s\n' "$1" >&2
	usage >&2
	exit 2
}

server=${DISCOVERY_SERVER:-tcp://127.0.0.1:7700}
publish=${DISCOVERY_PUBLISH:-tcp://127.0.0.1:7701}
timeout=5
token=${SERVICE_DISCOVERY_API_KEY:-}
if [ -z "$token" ] && [ -n "${DISCOVERY_TOKEN:-}" ]; then
	# Deprecated: the one variable every client reads is SERVICE_DISCOVERY_API_KEY.
	printf 'discovery.sh: DISCOVERY_TOKEN is deprecated; use SERVICE_DISCOVERY_API_KEY or --token-file\n' >&2
	token=$DISCOVERY_TOKEN
fi
proto=${DISCOVERY_PROTO:-$(dirname "$0")/../../proto}
text=false

need_value() { # option, remaining argument count
	[ "$2" -ge 2 ] || usage_error "$1 needs a value"
}

is_count() {
	case $1 in '' | *[!0-9]*) return 1 ;; esac
}

# The token in file $1, by the server's rules (src/common/tokenfile.c): a
# regular file neither group nor others can read, one trailing newline (or
# CRLF) stripped, 1-4095 bytes, no NUL. Sets $token; exits 2 otherwise.
read_token_file() {
	tf=$1
	[ -r "$tf" ] || die 2 "--token-file $tf: cannot read the token file"
	[ -f "$tf" ] || die 2 "--token-file $tf: the token file is not a regular file"
	mode=$(stat -L -c %a "$tf") || die 2 "--token-file $tf: cannot read the token file"
	[ $((0$mode & 077)) -eq 0 ] ||
		die 2 "--token-file $tf: the token file is readable by group or others (mode $mode); chmod 600 it"
	size=$(wc -c <"$tf")
	[ "$(tr -d '\000' <"$tf" | wc -c)" -eq "$size" ] ||
		die 2 "--token-file $tf: the token file holds a NUL byte"
	if [ "$size" -gt 0 ] && [ "$(tail -c 1 "$tf" | od -An -tx1 | tr -d ' ')" = 0a ]; then
		size=$((size - 1))
		if [ "$size" -gt 0 ] && [ "$(head -c "$size" "$tf" | tail -c 1 | od -An -tx1 | tr -d ' ')" = 0d ]; then
			size=$((size - 1))
		fi
	fi
	[ "$size" -le 4095 ] ||
		die 2 "--token-file $tf: the token file is too large: a token has at most 4095 bytes"
	[ "$size" -gt 0 ] || die 2 "--token-file $tf: the token file is empty"
	token=$(head -c "$size" "$tf")
}

while [ $# -gt 0 ]; do
	case $1 in
	--server) need_value "$1" $# && server=$2 && shift ;;
	--publish) need_value "$1" $# && publish=$2 && shift ;;
	--timeout) need_value "$1" $# && timeout=$2 && shift ;;
	--token-file) need_value "$1" $# && read_token_file "$2" && shift ;;
	--token | --token=*) usage_error "$1: a token on the command line is visible to every user (ps); use --token-file FILE or SERVICE_DISCOVERY_API_KEY" ;;
	--proto) need_value "$1" $# && proto=$2 && shift ;;
	--text) text=true ;;
	-h | --help)
		usage
		exit 0
		;;
	--) shift && break ;;
	-*) usage_error "unknown option $1" ;;
	*) break ;;
	esac
	shift
done
[ $# -gt 0 ] || usage_error "no command"
is_count "$timeout" && [ "$timeout" -gt 0 ] || usage_error "--timeout takes whole seconds (nngcat's unit)"
[ -f "$proto/discovery/v1/discovery.proto" ] ||
	die 5 "no discovery/v1/discovery.proto under $proto (use --proto DIR)"
command -v protoc >/dev/null 2>&1 || die 5 "protoc is missing (Debian: protobuf-compiler)"
command -v nngcat >/dev/null 2>&1 || die 5 "nngcat is missing (Debian: nng-utils)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/discovery-sh.XXXXXX") || die 5 "cannot create a temporary directory"
watcher=
cleanup() {
	[ -n "$watcher" ] && kill "$watcher" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# protoc's text format in C locale, so awk handles bytes, not characters.
LC_ALL=C
export LC_ALL

encode() { # TYPE: text format on stdin, binary on stdout
	protoc --proto_path="$proto" --encode="discovery.v1.$1" discovery/v1/discovery.proto
}
decode() { # TYPE: binary on stdin, text format on stdout
	protoc --proto_path="$proto" --decode="discovery.v1.$1" discovery/v1/discovery.proto
}

# A text-format string literal: quotes and backslashes escaped, newlines as \n.
quote() {
	printf '%s' "$1" | awk '
		{
			if (NR > 1) out = out "\\n"
			for (i = 1; i <= length($0); i++) {
				c = substr($0, i, 1)
				out = out ((c == "\\" || c == "\"") ? "\\" c : c)
			}
		}
		END { printf "\"%s\"", out }'
}

# The awk functions that read protoc's text format: unquote() undoes its
# escapes; instances print "SERVICE ENDPOINT HEALTH" as each one closes.
AWK_LIB='
function unquote(s,    out, i, c, n) {
	sub(/^[^"]*"/, "", s)
	sub(/"$/, "", s)
	out = ""
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (c != "\\") { out = out c; continue }
		c = substr(s, ++i, 1)
		if (c == "n") out = out "\n"
		else if (c == "t") out = out "\t"
		else if (c == "r") out = out "\r"
		else if (c ~ /[0-7]/) {
			n = c + 0
			while (substr(s, i + 1, 1) ~ /[0-7]/ && length(c) < 3) {
				c = c substr(s, ++i, 1)
				n = n * 8 + substr(s, i, 1)
			}
			out = out sprintf("%c", n)
		} else out = out c
	}
	return out
}
function health(h) {
	if (h == "") return "unknown"
	sub(/^HEALTH_/, "", h)
	return tolower(h)
}
function value(line) {
	sub(/^ *[a-z_]+: /, "", line)
	return line
}
'

# Runs one call, given the text-format Request (its call field). On success
# leaves the decoded Response in $tmp/reply; otherwise reports and exits.
call() {
	{
		[ -n "$token" ] && printf 'auth_token: %s\n' "$(quote "$token")"
		printf '%s\n' "$1"
	} >"$tmp/request.txt"
	encode Request <"$tmp/request.txt" >"$tmp/request" 2>"$tmp/err" ||
		die 2 "cannot encode the request: $(cat "$tmp/err")"
	rm -f "$tmp/response"
	nngcat --req --connect "$server" --file "$tmp/request" --raw \
		--send-timeout "$timeout" --recv-timeout "$timeout" >"$tmp/response" 2>"$tmp/err"
	rc=$?
	# A receive timeout exits 0 with no output; a refused dial exits 1.
	if [ ! -s "$tmp/response" ]; then
		why=$(cat "$tmp/err")
		[ $rc -ne 0 ] && [ -n "$why" ] && die 3 "$server: $why"
		die 3 "$server: no answer within $timeout s"
	fi
	decode Response <"$tmp/response" >"$tmp/reply" 2>"$tmp/err" ||
		die 3 "undecodable reply from $server: $(cat "$tmp/err")"
	if $text; then
		cat "$tmp/reply"
	fi
	status=$(sed -n 's/^status: //p' "$tmp/reply")
	[ -z "$status" ] && return 0 # proto3 omits STATUS_OK
	message=$(awk "$AWK_LIB"'/^message: / { print unquote($0) }' "$tmp/reply")
	case $status in
	STATUS_NOT_FOUND | STATUS_UNAVAILABLE) code=1 ;;
	*) code=4 ;;
	esac
	die $code "$cmd: $status: $message"
}

# Prints "SERVICE ENDPOINT HEALTH" for each instance in the reply.
print_instances() {
	$text && return 0
	awk "$AWK_LIB"'
		/^ *(instance|instances) \{$/ { depth = indent($0); svc = ep = h = ""; inside = 1; next }
		inside && indent($0) == depth + 2 && /^ *service: / { svc = unquote($0) }
		inside && indent($0) == depth + 2 && /^ *endpoint: / { ep = unquote($0) }
		inside && indent($0) == depth + 2 && /^ *health: / { h = value($0) }
		inside && indent($0) == depth && /^ *\}$/ { print svc, ep, health(h); inside = 0 }
		function indent(line) { match(line, /^ */); return RLENGTH }
	' "$tmp/reply"
}

cmd=$1
shift
# Options of the command may come before, between or after its arguments.
nargs=0
meta=
health_path=
ttl=
weight=
healthy_only=false
count=0
idle=
sync=false
pending=
for arg; do
	shift
	if [ -n "$pending" ]; then
		case $pending in
		--meta)
			case $arg in *=*) ;; *) usage_error "--meta takes KEY=VALUE" ;; esac
			meta="$meta metadata { key: $(quote "${arg%%=*}") value: $(quote "${arg#*=}") }"
			;;
		--health-path) health_path=$arg ;;
		--ttl-ms) is_count "$arg" || usage_error "--ttl-ms takes a number" && ttl=$arg ;;
		--weight) is_count "$arg" || usage_error "--weight takes a number" && weight=$arg ;;
		--count) is_count "$arg" || usage_error "--count takes a number" && count=$arg ;;
		--idle) is_count "$arg" && [ "$arg" -gt 0 ] || usage_error "--idle takes whole seconds" && idle=$arg ;;
		esac
		pending=
		continue
	fi
	case $arg in
	--meta | --health-path | --ttl-ms | --weight | --count | --idle) pending=$arg ;;
	--healthy-only) healthy_only=true ;;
	--sync) sync=true ;;
	-*) usage_error "unknown option $arg" ;;
	*)
		# Kept as positional parameters: "$@" is rebuilt from the arguments.
		set -- "$@" "$arg"
		nargs=$((nargs + 1))
		;;
	esac
done
[ -z "$pending" ] || usage_error "$pending needs a value"

args() { # min max
	[ "$nargs" -ge "$1" ] && [ "$nargs" -le "$2" ] || usage_error "$cmd: wrong number of arguments"
}

case $cmd in
register)
	args 2 2
	req="register { service: $(quote "$1") endpoint: $(quote "$2")$meta"
	[ -n "$health_path" ] && req="$req health_path: $(quote "$health_path")"
	[ -n "$ttl" ] && req="$req ttl_ms: $ttl"
	[ -n "$weight" ] && req="$req weight: $weight"
	call "$req }"
	print_instances
	;;
resolve)
	args 1 1
	call "resolve { service: $(quote "$1") healthy_only: $healthy_only }"
	$text || awk "$AWK_LIB"'/^    endpoint: / { print unquote($0) }' "$tmp/reply"
	;;
deregister)
	args 1 2
	call "deregister { service: $(quote "$1") endpoint: $(quote "${2:-}") }"
	$text || printf 'removed %s\n' "$(sed -n 's/^  removed: //p' "$tmp/reply" | grep . || echo 0)"
	;;
health)
	args 1 2
	call "is_healthy { service: $(quote "$1") endpoint: $(quote "${2:-}") }"
	state=$(awk "$AWK_LIB"'/^  state: / { s = value($0) } END { print health(s) }' "$tmp/reply")
	$text || printf '%s\n' "$state"
	[ "$state" = healthy ] || exit 1
	;;
list)
	args 0 1
	call "get_all { service: $(quote "${1:-}") }"
	print_instances
	;;
heartbeat)
	args 2 2
	call "heartbeat { service: $(quote "$1") endpoint: $(quote "$2") }"
	print_instances
	;;
watch)
	# One --subscribe per service: the prefix 0x0A, len(name), name (names
	# normalized as the server does), plus SYNC's 0x10 0x05 with --sync.
	# No service: the empty prefix, every event.
	n=0
	for svc; do
		shift
		name=$(printf '%s' "$svc" | tr 'ABCDEFGHIJKLMNOPQRSTUVWXYZ_' 'abcdefghijklmnopqrstuvwxyz-')
		case $name in
		'' | *[!a-z0-9.-]* | [.-]* | *[.-]) usage_error "watch: invalid service name $svc" ;;
		esac
		[ ${#name} -le 63 ] || usage_error "watch: service name longer than 63: $svc"
		set -- "$@" --subscribe "$(printf "\\n\\$(printf '%03o' ${#name})%s" "$name")"
		n=$((n + 1))
	done
	if [ $n -eq 0 ]; then
		set -- --subscribe ""
	elif $sync; then
		set -- "$@" --subscribe "$(printf '\020\005')"
	fi
	[ -n "$idle" ] && set -- "$@" --recv-timeout "$idle"
	mkfifo "$tmp/events" || die 5 "cannot create a FIFO in $tmp"
	nngcat --sub --connect "$publish" "$@" --hex >"$tmp/events" 2>"$tmp/err" &
	watcher=$!
	seen=0
	while IFS= read -r line; do
		# "\x0a\x06..." -> the same bytes as octal escapes for printf.
		octal=$(printf '%s\n' "$line" | awk '
			function h(c) { return index("0123456789abcdef", c) - 1 }
			{
				gsub(/["\\x]/, "")
				for (i = 1; i < length($0); i += 2)
					printf "\\%03o", h(substr($0, i, 1)) * 16 + h(substr($0, i + 1, 1))
			}')
		# shellcheck disable=SC2059 # the format is the message, as octal escapes
		printf "$octal" >"$tmp/event"
		decode Event <"$tmp/event" >"$tmp/event.txt" 2>/dev/null || continue
		if grep -q '^type: EVENT_SYNC$' "$tmp/event.txt"; then
			$sync || continue
		else
			seen=$((seen + 1))
		fi
		if $text; then
			cat "$tmp/event.txt"
			echo
		else
			awk "$AWK_LIB"'
				/^[a-z_]+: / { top[$1] = $0 }
				/^  endpoint: / { ep = unquote($0) }
				/^  health: / { h = value($0) }
				END {
					t = value(top["type:"]); sub(/^EVENT_/, "", t); t = tolower(t)
					line = (value(top["revision:"]) + 0) " " t
					if (t != "sync") {
						line = line " " unquote(top["service:"]) " " ep
						if (t == "health_changed") line = line " " health(value(top["previous:"])) " ->"
						line = line " " health(h)
						if (top["reason:"] != "") line = line " (" unquote(top["reason:"]) ")"
					}
					print line
				}' "$tmp/event.txt"
		fi
		[ "$count" -gt 0 ] && [ "$seen" -ge "$count" ] && break
	done <"$tmp/events"
	if [ "$count" -gt 0 ] && [ "$seen" -ge "$count" ]; then
		exit 0
	fi
	wait "$watcher"
	rc=$?
	watcher=
	[ $rc -eq 0 ] || die 3 "$publish: $(cat "$tmp/err")"
	[ "$count" -eq 0 ] || die 1 "watch: $seen of $count events before $idle s without one"
	;;
*) usage_error "unknown command $cmd" ;;
esac
