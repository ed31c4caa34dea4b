#!/usr/bin/env bash
# Quick start, part two: install what is needed, build, and run every test
# three times: a plain -Werror build, AddressSanitizer + UndefinedBehaviorSanitizer,
# and the plain build again under valgrind memcheck; in between, ThreadSanitizer
# on the suites that exercise our threads; then fuzz.
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
  run_suite sanitize -DCMAKE_BUILD_TYPE=Debug -DDISCOVERY_SANITIZE=address
# ThreadSanitizer (docs/design.md states the threads and the lock order) on
# the unit tests, the in-process server suite and the integration suites,
# whose discoveryd and discoveryctl are built with TSan too. Every process
# writes its reports under build/tsan/reports; any report fails the pass.
# Left out: discoveryctl_test (two minutes of TSan start-ups for no thread of
# its own; client_test covers the library), tls_test (nng 1.5.2 frees a
# published message while mbedTLS still copies it, ordered by atomics TSan
# cannot see: tests/tsan.supp), startup_test and auth_test (time; no
# threading of their own), and the Python, shell and nngcat tests (the same
# daemon, driven from other languages; python_aio's TLS case also meets the
# nng/mbedTLS report above). intercept_send=0: nng frees a
# published message while the kernel's sendmsg reads it, ordered by the same
# atomics; our code calls no send* itself.
tsan_reports=$PWD/build/tsan/reports tsan_supp=$PWD/tests/tsan.supp
tsan_skip='^(discoveryctl_test|tls_test|startup_test|auth_test|python_client|python_aio|python_follow|cluster_script|dashboard|python_package|interop|shell_client|nngcat_example)$'
echo "== build build/tsan"
cmake -S . -B build/tsan -DBUILD_TESTING=ON -DDISCOVERY_WERROR=ON -DDISCOVERY_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDISCOVERY_SANITIZE=thread >/dev/null
cmake --build build/tsan -j2
echo "== test build/tsan under ThreadSanitizer (not: $tsan_skip)"
rm -rf "$tsan_reports" && mkdir -p "$tsan_reports"
tsan_status=0
(cd build/tsan && DISCOVERY_TEST_SLOWDOWN=4 \
  TSAN_OPTIONS="suppressions=$tsan_supp:log_path=$tsan_reports/tsan:intercept_send=0" \
  ctest --output-on-failure -j2 -E "$tsan_skip") || tsan_status=$?
for report in "$tsan_reports"/tsan.*; do
  [ -e "$report" ] || continue
  echo "---- $report" >&2
  cat "$report" >&2
  tsan_status=1
done
[ "$tsan_status" -eq 0 ] || { echo "ThreadSanitizer: reports or failures (above)" >&2; exit 1; }
# valgrind memcheck on the plain build: the C test binaries and every discoveryd
# and discoveryctl they start; any error or definite leak fails. It says which
# suites it leaves out and why; tests/valgrind.supp documents its suppressions.
scripts/valgrind.sh
# libFuzzer (clang), bounded: every saved regression input of both targets,
# then request decoding, validation and dispatch (2/3 of the time) and the
# configuration loader, YAML and environment (1/3); see tests/fuzz/.
echo "== fuzz (60 s)"
scripts/fuzz.sh 60
echo "== all test suites passed"
