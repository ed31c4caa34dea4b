#!/usr/bin/env bash
# Regenerates the committed seed corpus (tests/fuzz/corpus/) from the text
# below with protoc (Debian: protobuf-compiler). Run it after a change to the
# contract; scripts/fuzz.sh only reads the committed files.
# Sequence seeds follow fuzz_dispatch.c: 'S', a flags byte, then Requests
# separated by SEP (ff fe fd fc).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=tests/fuzz/corpus
mkdir -p "$out"

enc() { protoc --proto_path=proto --encode=discovery.v1.Request discovery/v1/discovery.proto; }
seed() { printf '%s' "$2" | enc >"$out/$1"; }
SEP=$'\xff\xfe\xfd\xfc'

# One valid request of each kind.
seed register 'register { service: "memory" endpoint: "http://127.0.0.1:9311" }'
seed register-full 'auth_token: "t" register { service: "Memory_Service" endpoint: "https://mem.example:8443/api?x=1" metadata { key: "zone" value: "eu-1" } metadata { key: "a" value: "b" } metadata { key: "zone" value: "eu-2" } health_path: "healthz" ttl_ms: 1000 weight: 3 }'
seed register-tcp 'register { service: "cache" endpoint: "tcp://10.0.0.1:6379" ttl_ms: 100 }'
seed resolve 'resolve { service: "memory" healthy_only: true }'
seed deregister 'deregister { service: "memory" endpoint: "http://127.0.0.1:9311" }'
seed deregister-all 'deregister { service: "memory" }'
seed is-healthy 'is_healthy { service: "memory" endpoint: "http://127.0.0.1:9311" }'
seed get-all 'get_all { service: "" }'
seed heartbeat 'heartbeat { service: "cache" endpoint: "tcp://10.0.0.1:6379" }'

# Malformed: invalid fields, no call, an unknown call, and bytes that are not a Request.
seed bad-endpoint 'register { service: "memory" endpoint: "http://user@h:0/#f" }'
seed bad-name 'resolve { service: "-Bad Name-" }'
seed link-local 'register { service: "meta" endpoint: "http://169.254.169.254/latest" }' # the default policy
seed link-local-v6 'register { service: "meta" endpoint: "tcp://[fe80::1]:80" }'
seed no-call 'auth_token: "only a token"'
meta=$(for i in 1 2 3 4 5 6 7 8 9; do printf 'metadata { key: "k%s" value: "v" } ' $i; done)
seed meta-over-limit "register { service: \"m\" endpoint: \"http://h:1\" $meta }" # 9 > 8 entries
seed long-health-path "register { service: \"m\" endpoint: \"http://h:1\" health_path: \"$(printf '%01025d' 0)\" }"
seed long-endpoint "register { service: \"m\" endpoint: \"http://h:1/$(printf '%02041d' 0)\" }"
printf '\x82\x01\x02\x08\x01' >"$out/unknown-call"    # field 16: a newer client's call
printf '\x52\x05\x0a\x09memory' >"$out/truncated"     # a length past the end
printf '\x0a' >"$out/one-byte"

# Sequences: register -> resolve -> heartbeat -> is_healthy -> get_all -> deregister.
seq() { # name flags request...
	local name=$1 flags=$2 first=1
	shift 2
	{
		printf 'S'
		printf "\\x$flags"
		for r in "$@"; do
			[ $first = 1 ] || printf '%s' "$SEP"
			first=0
			printf '%s' "$r" | enc
		done
	} >"$out/$name"
}
lifecycle=(
	'register { service: "memory" endpoint: "http://127.0.0.1:9311" ttl_ms: 500 }'
	'register { service: "memory" endpoint: "https://10.0.0.2:9311" weight: 2 }'
	'register { service: "memory" endpoint: "tcp://10.0.0.3:9311" metadata { key: "k" value: "v" } }'
	'resolve { service: "MEMORY" }'
	'resolve { service: "memory" healthy_only: true }'
	'heartbeat { service: "memory" endpoint: "http://127.0.0.1:9311" }'
	'heartbeat { service: "memory" endpoint: "https://10.0.0.2:9311" }'
	'is_healthy { service: "memory" }'
	'get_all { }'
	'deregister { service: "memory" endpoint: "https://10.0.0.2:9311" }'
	'deregister { service: "memory" }'
	'resolve { service: "memory" }'
)
seq seq-lifecycle 00 "${lifecycle[@]}"
seq seq-health 02 "${lifecycle[@]}"
seq seq-production 01 \
	'register { service: "web" endpoint: "http://127.0.0.1:80" }' \
	'register { service: "web" endpoint: "https://127.0.0.1:443" }' \
	'get_all { service: "web" }'
auth=(
	'register { service: "memory" endpoint: "http://127.0.0.1:9311" }'
	'auth_token: "fuzz-token" register { service: "memory" endpoint: "http://127.0.0.1:9311" }'
	'auth_token: "wrong" deregister { service: "memory" }'
	'resolve { service: "memory" }'
	'auth_token: "fuzz-token" resolve { service: "memory" }'
)
seq seq-auth 04 "${auth[@]}"
seq seq-auth-reads 0c "${auth[@]}"
echo "wrote $(ls "$out" | wc -l) seeds to $out"
