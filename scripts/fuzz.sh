#!/usr/bin/env bash
# Fuzzes request decoding, validation and dispatch (tests/fuzz/fuzz_dispatch.c)
# with libFuzzer + ASan + UBSan, built with clang in build/fuzz.
# Usage: scripts/fuzz.sh [SECONDS]   (default 60; 0 only replays the regressions)
# First replays every input in tests/fuzz/regressions/, then fuzzes for SECONDS
# from the seeds in tests/fuzz/corpus/ plus what earlier runs found
# (build/fuzz/corpus/). Exits non-zero on any crash, leak, UB or failed check;
# the input that did it is left in build/fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
case $seconds in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac
scripts/deps.sh fuzz

dir=build/fuzz
bin=$dir/fuzz_dispatch
echo "== build $bin (clang, libFuzzer + ASan + UBSan)"
cmake -S tests/fuzz -B "$dir" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" --target fuzz_dispatch -j2

export ASAN_OPTIONS=detect_leaks=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p "$dir/corpus" "$dir/artifacts"
log=$dir/fuzz.log
opts=(-timeout=10 -rss_limit_mb=2048 -max_len=4096 -dict=tests/fuzz/dispatch.dict
  -artifact_prefix="$dir/artifacts/")

failed() { # what, hint
  echo "fuzz: $1 (full log: $log)" >&2
  # The report: from the first sign of trouble, without progress lines.
  awk '/runtime error|ERROR:|check failed|deadly signal/ { p = 1 } p' "$log" | grep -v -E '^#[0-9]+' |
    head -n 150 >&2
  echo "fuzz: $2" >&2
  exit 1
}

regressions=()
for f in tests/fuzz/regressions/*; do
  case $(basename "$f") in README*) continue ;; esac
  if [ -f "$f" ]; then regressions+=("$f"); fi
done
echo "== replay ${#regressions[@]} regression input(s) from tests/fuzz/regressions"
if [ ${#regressions[@]} -gt 0 ]; then
  "$bin" "${opts[@]}" "${regressions[@]}" >"$log" 2>&1 || failed "a regression input fails again" \
    "replay one with: $bin tests/fuzz/regressions/<name>"
fi

[ "$seconds" -gt 0 ] || { echo "== regressions pass"; exit 0; }
echo "== fuzz for ${seconds}s (seeds: tests/fuzz/corpus; found: $dir/corpus)"
# New inputs go to the first directory only; the committed seeds stay as they are.
"$bin" "${opts[@]}" -max_total_time="$seconds" -print_final_stats=1 \
  "$dir/corpus" tests/fuzz/corpus >"$log" 2>&1 ||
  failed "the fuzzer found a crash" "keep the input ($dir/artifacts/, named above) as tests/fuzz/regressions/<name>"
grep -E '^#[0-9]+' "$log" | tail -n 1 || true
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" || true
echo "== fuzzing found nothing in ${seconds}s"
