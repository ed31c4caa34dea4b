#!/usr/bin/env bash
# Quick start, part one: install what is needed, build, and run discoveryd
# in the foreground on its defaults (REQ/REP tcp://127.0.0.1:7700).
# Extra arguments go to discoveryd, e.g. scripts/serve.sh --log-level debug
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh runtime
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build/release -j2 --target discoveryd discoveryctl >/dev/null
exec build/release/src/discoveryd "$@"
