#!/usr/bin/env bash
# Quick start, part two: install what is needed, build, and run every test
# three times: a plain -Werror build, AddressSanitizer + UndefinedBehaviorSanitizer,
# and the plain build again under valgrind memcheck; then fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

echo "== format check (clang-format --dry-run)"
git ls-files '*.c' '*.h' | xargs -r clang-format --dry-run --Werror

run_suite() { # name, cmake args...
  local dir=build/$1
  shift
  echo "== build $dir"
  cmake -S . -B "$dir" -DBUILD_TESTING=ON -DDISCOVERY_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j2
  echo "== test $dir"
  (cd "$dir" && ctest --output-on-failure -j2)
}

run_suite plain -DCMAKE_BUILD_TYPE=RelWithDebInfo
# tests/lsan.supp holds one documented suppression for a leak inside nng 1.5.2.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0" \
  run_suite sanitize -DCMAKE_BUILD_TYPE=Debug -DDISCOVERY_SANITIZE=ON
# valgrind memcheck on the plain build: the C test binaries and every discoveryd
# and discoveryctl they start; any error or definite leak fails. It says which
# suites it leaves out and why; tests/valgrind.supp documents its suppressions.
scripts/valgrind.sh
# libFuzzer on request decoding, validation and dispatch (clang), bounded, then
# every saved regression input; see tests/fuzz/.
echo "== fuzz (60 s)"
scripts/fuzz.sh 60
echo "== all test suites passed"
