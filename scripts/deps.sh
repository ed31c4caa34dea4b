#!/usr/bin/env bash
# Installs the Debian 12 packages the project needs, only those missing.
# Usage: scripts/deps.sh [runtime|test|bench|fuzz]   (test adds what the test suite uses,
#        valgrind included; bench adds gnuplot-nox, which bench/run plots with, and
#        etcd-server (also in test), golang-go and golang-etcd-server-dev for scenario 7; fuzz
#        adds clang, its libFuzzer/sanitizer runtimes and llvm-symbolizer, for scripts/fuzz.sh)
set -euo pipefail

# libmbedtls-dev comes with libnng-dev; it is named since src/common/tls.c uses it directly.
want=(cmake make gcc pkg-config
      libnng-dev libmbedtls-dev libprotobuf-c-dev protobuf-c-compiler libcurl4-openssl-dev libyaml-dev
      libsqlite3-dev libjansson-dev)
if [ "${1:-runtime}" = test ]; then
  # openssl: tests/tls_test.c makes its throwaway certificates with the command line tool.
  # groff-base and man-db: docs/man/man_test.sh renders every man page with groff -ww and man -l.
  # tests/packaging: dpkg-dev (dpkg-shlibdeps for cpack's .debs, dpkg-architecture),
  # binutils (nm -D, readelf), systemd (systemd-analyze verify of the unit).
  # python3-prometheus-client: tests/python/admin_metrics.py parses /metrics with it.
  # python3-setuptools, -wheel, -pip and -venv: the Python package test (pip install, offline).
  # etcd-server: tests/integration/etcd_*_test.c run cluster mode's etcd client against it.
  # chromium and python3-websocket: tests/python/test_dashboard.py drives the dashboard in
  # headless chromium over the DevTools protocol.
  want+=(libcmocka-dev nng-utils protobuf-compiler clang-format python3 python3-protobuf openssl
         valgrind groff-base man-db dpkg-dev binutils systemd
         python3-setuptools python3-wheel python3-pip python3-venv python3-prometheus-client
         etcd-server chromium python3-websocket)
fi
if [ "${1:-runtime}" = bench ]; then
  # Scenario 7 runs Debian's etcd and builds etcd's own Go client (clientv3) offline
  # from golang-etcd-server-dev's sources (GOPATH mode; its -dev dependencies come along).
  want+=(gnuplot-nox etcd-server golang-go golang-etcd-server-dev)
fi
if [ "${1:-runtime}" = fuzz ]; then
  # libclang-rt-14-dev ships libclang_rt.fuzzer-x86_64.a; clang does not pull it in.
  want+=(clang libclang-rt-14-dev llvm)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "deps: missing packages (${missing[*]}); run this as root to install them" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
