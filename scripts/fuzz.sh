#!/usr/bin/env bash
# Fuzzes with libFuzzer + ASan + UBSan, built with clang in build/fuzz, three targets:
#   fuzz_dispatch  request decoding, validation and dispatch (tests/fuzz/fuzz_dispatch.c)
#   fuzz_config    the configuration loader: YAML file and environment (tests/fuzz/fuzz_config.c)
#   fuzz_admin     the admin endpoint's request targets (tests/fuzz/fuzz_admin.c)
# Usage: scripts/fuzz.sh [SECONDS]   (default 60, in total: half to dispatch,
#        a third to config, a sixth to admin; 0 only replays the regressions)
# First replays every input in tests/fuzz/regressions/ (dispatch),
# tests/fuzz/regressions-config/ (config) and tests/fuzz/regressions-admin/ (admin),
# then fuzzes each target from its seeds (tests/fuzz/corpus*/) plus what earlier
# runs found (build/fuzz/corpus*/). Exits non-zero on any crash, leak, UB,
# timeout or failed check; the input that did it is left in build/fuzz/artifacts*/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
case $seconds in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac
scripts/deps.sh fuzz

dir=build/fuzz
echo "== build $dir/fuzz_dispatch, fuzz_config and fuzz_admin (clang, libFuzzer + ASan + UBSan)"
cmake -S tests/fuzz -B "$dir" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" --target fuzz_dispatch fuzz_config fuzz_admin -j2

export ASAN_OPTIONS=detect_leaks=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

failed() { # log, what, hint
  echo "fuzz: $2 (full log: $1)" >&2
  # The report: from the first sign of trouble, without progress lines.
  awk '/runtime error|ERROR:|check failed|deadly signal|timeout after/ { p = 1 } p' "$1" |
    grep -v -E '^#[0-9]+' | head -n 150 >&2
  echo "fuzz: $3" >&2
  exit 1
}

# fuzz NAME SUFFIX SECONDS OPTIONS...: replay NAME's regressions, then fuzz it.
# SUFFIX names its directories: corpus$SUFFIX, regressions$SUFFIX, artifacts$SUFFIX.
fuzz() {
  local name=$1 suffix=$2 secs=$3
  shift 3
  local bin=$dir/fuzz_$name log=$dir/fuzz$suffix.log
  local regdir=tests/fuzz/regressions$suffix seeds=tests/fuzz/corpus$suffix
  local found=$dir/corpus$suffix artifacts=$dir/artifacts$suffix
  mkdir -p "$found" "$artifacts"
  local opts=("$@" -artifact_prefix="$artifacts/")

  local regressions=() f
  for f in "$regdir"/*; do
    case $(basename "$f") in README*) continue ;; esac
    if [ -f "$f" ]; then regressions+=("$f"); fi
  done
  echo "== $name: replay ${#regressions[@]} regression input(s) from $regdir"
  if [ ${#regressions[@]} -gt 0 ]; then
    "$bin" "${opts[@]}" "${regressions[@]}" >"$log" 2>&1 || failed "$log" \
      "a $name regression input fails again" "replay one with: $bin $regdir/<name>"
  fi
  [ "$secs" -gt 0 ] || return 0
  echo "== $name: fuzz for ${secs}s (seeds: $seeds; found: $found)"
  # New inputs go to the first directory only; the committed seeds stay as they are.
  "$bin" "${opts[@]}" -max_total_time="$secs" -print_final_stats=1 "$found" "$seeds" \
    >"$log" 2>&1 ||
    failed "$log" "the $name fuzzer found a crash" \
      "keep the input ($artifacts/, named above) as $regdir/<name>"
  grep -E '^#[0-9]+' "$log" | tail -n 1 || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
    "$log" || true
}

config_secs=$((seconds / 3))
admin_secs=$((seconds / 6))
# -timeout: a configuration (at most 1 MiB, 32 levels) loads in far less
# than a second; libyaml's loader on deep nesting took minutes.
fuzz dispatch "" $((seconds - config_secs - admin_secs)) -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
  -dict=tests/fuzz/dispatch.dict
fuzz config -config "$config_secs" -timeout=5 -rss_limit_mb=2048 -max_len=65536 \
  -dict=tests/fuzz/config.dict
# A target is parsed in microseconds; 2 KiB is the most the handler parses.
fuzz admin -admin "$admin_secs" -timeout=5 -rss_limit_mb=2048 -max_len=2048 \
  -dict=tests/fuzz/admin.dict
if [ "$seconds" -gt 0 ]; then
  echo "== fuzzing found nothing in ${seconds}s"
else
  echo "== regressions pass"
fi
