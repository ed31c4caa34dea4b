#!/usr/bin/env bash
# The man pages render with no groff warning and no line past 80 columns,
# and agree with what they document: discoveryd(8) and discoveryd.yaml(5)
# with `discoveryd --help`, discoveryctl(1) with `discoveryctl --help`,
# libdiscovery(3) with the public headers, discovery(7) with the proto.
# Usage: man_test.sh MAN_BUILD_DIR DISCOVERYD DISCOVERYCTL SOURCE_DIR
set -euo pipefail
man_dir=$1
discoveryd=$2
discoveryctl=$3
src=$4
pages=(discoveryd.8 discoveryd.yaml.5 discoveryctl.1 libdiscovery.3 discovery.7)
failures=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

for tool in groff man; do
  command -v "$tool" >/dev/null || { echo "man_test: $tool is missing (scripts/deps.sh test)" >&2; exit 1; }
done

# A page as plain text, 80 columns wide (what `man` shows in a terminal).
render() {
  groff -man -Tascii -P-cbou -rLL=80n "$1" 2>/dev/null
}


# True when word (a flag, a variable, a key) stands alone in the text.
has_word() {
  local w=${2//./\\.} # words are [A-Za-z0-9_.-]: only the dot needs escaping
  grep -qE -- "(^|[^A-Za-z0-9_-])$w([^A-Za-z0-9_-]|$)" "$1"
}

# ---- every page renders cleanly ----
for p in "${pages[@]}"; do
  f=$man_dir/$p
  [ -s "$f" ] || { fail "$p was not built"; continue; }
  warn=$(groff -man -ww -z -Tutf8 "$f" 2>&1 >/dev/null) || true
  [ -z "$warn" ] || fail "$p: groff -man -ww: $warn"
  warn=$(MANWIDTH=80 MAN_DISABLE_SECCOMP=1 man --warnings=w -l "$f" 2>&1 >/dev/null) || true
  [ -z "$warn" ] || fail "$p: man -l: $warn"
  render "$f" > "$tmp/$p.txt"
  long=$(awk 'length($0) > 80 { print NR ": " $0 }' "$tmp/$p.txt")
  [ -z "$long" ] || fail "$p: lines past 80 columns:"$'\n'"$long"
  # The same text on one line with single spaces, for phrases a line break may split.
  { tr '\n' ' ' < "$tmp/$p.txt" | tr -s ' '; echo; } > "$tmp/$p.flat"
done

# ---- discoveryd(8) and discoveryd.yaml(5) against discoveryd --help ----
"$discoveryd" --help > "$tmp/d.help"
for flag in $(grep -oE -- '--[a-z][a-z-]*' "$tmp/d.help" | sort -u); do
  has_word "$tmp/discoveryd.8.flat" "$flag" || fail "discoveryd.8 does not name $flag"
done
for var in $(grep -oE 'SERVICE_DISCOVERY_[A-Z_]+|\bENVIRONMENT\b' "$tmp/d.help" | sort -u); do
  has_word "$tmp/discoveryd.8.flat" "$var" || fail "discoveryd.8 does not name $var"
done
for key in $(sed -n 's/.*yaml \([a-z_.]*\).*/\1/p' "$tmp/d.help" | sort -u); do
  has_word "$tmp/discoveryd.8.flat" "$key" || fail "discoveryd.8 does not name YAML key $key"
  has_word "$tmp/discoveryd.yaml.5.flat" "$key" || fail "discoveryd.yaml.5 does not name $key"
done
# Each default --help shows, word for word.
sed -n 's/.*(default \(.*\))$/\1/p' "$tmp/d.help" | sort -u | while IFS= read -r d; do
  grep -qF -- "Default: $d." "$tmp/discoveryd.8.flat" || echo "discoveryd.8 lacks the default \"$d\""
done > "$tmp/d.defaults"
[ ! -s "$tmp/d.defaults" ] || fail "$(cat "$tmp/d.defaults")"
# Nothing the page names as a flag is unknown to --help ("--flag" is the placeholder).
for flag in $(grep -oE -- '--[a-z][a-z-]*[a-z]' "$tmp/discoveryd.8.flat" | sort -u); do
  [ "$flag" = --flag ] || has_word "$tmp/d.help" "$flag" || fail "discoveryd.8 names $flag, which discoveryd --help does not"
done
grep -q 'Exit status: 0 .*, 1 .*, 2 ' <(tr '\n' ' ' < "$tmp/d.help" | tr -s ' ') || fail "discoveryd --help changed its exit statuses"
for n in 0 1 2; do
  grep -qE "^ {7}$n( |$)" "$tmp/discoveryd.8.txt" || fail "discoveryd.8 lacks exit status $n"
done

# ---- discoveryctl(1) against discoveryctl --help ----
"$discoveryctl" --help > "$tmp/c.help"
commands=$(sed -n '/^Commands:/,/^$/p' "$tmp/c.help" | sed -n 's/^  \([a-z][a-z-]*\)\( .*\)\{0,1\}$/\1/p')
[ -n "$commands" ] || fail "no commands found in discoveryctl --help"
for cmd in $commands; do
  grep -qE "^ {7}$cmd( |$)" "$tmp/discoveryctl.1.txt" || fail "discoveryctl.1 has no entry for command $cmd"
done
for opt in $(grep -oE -- '(^|[ ,[])(-h|--[a-z][a-z-]*[a-z])' "$tmp/c.help" | grep -oE -- '-.*' | sort -u); do
  [ "$opt" = --opt ] && continue # the placeholder in "--opt VALUE or --opt=VALUE"
  has_word "$tmp/discoveryctl.1.flat" "$opt" || fail "discoveryctl.1 does not name $opt"
done
for opt in $(grep -oE -- '--[a-z][a-z-]*[a-z](-\*)?' "$tmp/discoveryctl.1.flat" | grep -v '\*$' | sort -u); do
  [ "$opt" = --option ] || has_word "$tmp/c.help" "$opt" || fail "discoveryctl.1 names $opt, which discoveryctl --help does not"
done
for n in $(sed -n '/^Exit status:/,$p' "$tmp/c.help" | sed -n 's/^  \([0-9]\)  .*/\1/p'); do
  grep -qE "^ {7}$n( |$)" "$tmp/discoveryctl.1.txt" || fail "discoveryctl.1 lacks exit status $n"
done
for var in $(grep -oE '\$[A-Z_]+' "$tmp/c.help" | tr -d '$' | sort -u); do
  has_word "$tmp/discoveryctl.1.flat" "$var" || fail "discoveryctl.1 does not name \$$var"
done

# ---- libdiscovery(3) against the public headers ----
headers=("$src/include/discovery/discovery.h" "$src/include/discovery/version.h.in")
for fn in $(grep -hE '^[a-z]' "${headers[@]}" | grep -v '^typedef' | grep -oE 'dsc_[a-z0-9_]+\(' | tr -d '(' | sort -u); do
  grep -qF "$fn(" "$tmp/libdiscovery.3.flat" || fail "libdiscovery.3 does not declare $fn"
done
for code in $(grep -oE 'X\(DSC_[A-Z]+' "${headers[0]}" | cut -c3-); do
  has_word "$tmp/libdiscovery.3.flat" "$code" || fail "libdiscovery.3 does not name $code"
done

# ---- discovery(7) against the proto ----
proto=$src/proto/discovery/v1/discovery.proto
for name in $(grep -oE '^ *(STATUS|HEALTH|EVENT)_[A-Z_]+' "$proto" | tr -d ' '); do
  has_word "$tmp/discovery.7.flat" "$name" || fail "discovery.7 does not name $name"
done
# Each field of the framed messages, as "name = number".
awk '/^message (Request|Response|Event) /{on=1; next} on && /^}/{on=0}
     on && /= [0-9]+;/ { sub(/;.*/, ""); n=split($0, w, " "); print w[n-2] " = " w[n] }' "$proto" |
  sort -u | while IFS= read -r field; do
    grep -qF "$field" "$tmp/discovery.7.flat" || echo "discovery.7 does not give the field \"$field\""
  done > "$tmp/fields"
[ ! -s "$tmp/fields" ] || fail "$(cat "$tmp/fields")"

if [ "$failures" -ne 0 ]; then
  echo "man_test: $failures failures" >&2
  exit 1
fi
echo "man_test: ${#pages[@]} pages render cleanly and agree with --help, the headers and the proto"
