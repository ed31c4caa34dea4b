#!/usr/bin/env bash
# A user's view of `cmake --install`: installs the build into a throwaway
# prefix, checks what landed there, builds tests/packaging/consumer/hello.c
# against it with pkg-config (shared and --static) and with find_package
# (discovery::discovery and discovery::discovery_static), and runs each
# build against the installed discoveryd on loopback port 0.
# Usage: consumer.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$1
# shellcheck source=lib.sh
. "$here/lib.sh"
work=$(mktemp -d)
trap 'stop_discoveryd; rm -rf "$work"' EXIT
prefix=$work/prefix
cc=${CC:-cc}

cmake --install "$build" --prefix "$prefix" >"$work/install.log"
for f in sbin/discoveryd bin/discoveryctl include/discovery/discovery.h \
    include/discovery/version.h include/discovery/export.h etc/discovery/discoveryd.yaml \
    lib/systemd/system/discoveryd.service; do
  [ -e "$prefix/$f" ] || { echo "FAIL: cmake --install did not install $f"; exit 1; }
done
so=$(find "$prefix" -name libdiscovery.so.0 | head -n 1)
[ -n "$so" ] || { echo "FAIL: no libdiscovery.so.0 installed"; exit 1; }
libdir=$(dirname "$so")
for f in libdiscovery.so libdiscovery.a pkgconfig/discovery.pc cmake/discovery/discoveryConfig.cmake; do
  [ -e "$libdir/$f" ] || { echo "FAIL: cmake --install did not install $libdir/$f"; exit 1; }
done
"$prefix/sbin/discoveryd" --version
start_discoveryd "$prefix/sbin/discoveryd"

# needed BINARY: the DT_NEEDED names that are ours or our dependencies'.
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | grep -E 'discovery|nng|protobuf|mbed' || true; }
run() { # name, binary: runs it against the daemon
  echo "== $1"
  LD_LIBRARY_PATH=$libdir "$2" "$url" || { echo "FAIL: $1 did not register and resolve"; exit 1; }
}

export PKG_CONFIG_PATH=$libdir/pkgconfig
libs=$(pkg-config --libs discovery)
[[ "$libs" =~ ^-L[^\ ]+\ -ldiscovery\ *$ ]] || { echo "FAIL: pkg-config --libs says '$libs'"; exit 1; }
# shellcheck disable=SC2046
"$cc" -Wall -Wextra -Werror -o "$work/hello-pc" "$here/consumer/hello.c" $(pkg-config --cflags --libs discovery)
[ "$(needed "$work/hello-pc")" = libdiscovery.so.0 ] || {
  echo "FAIL: hello-pc needs: $(needed "$work/hello-pc")"; exit 1; }
run "pkg-config, shared" "$work/hello-pc"

# libdiscovery.a with what `pkg-config --static` adds for it.
static_libs=$(pkg-config --static --libs discovery | sed 's/-L[^ ]*//g; s/-ldiscovery\b//')
# shellcheck disable=SC2046,SC2086
"$cc" -Wall -Werror -o "$work/hello-pc-static" "$here/consumer/hello.c" \
  $(pkg-config --cflags discovery) "$libdir/libdiscovery.a" $static_libs
needed "$work/hello-pc-static" | grep -q libdiscovery && { echo "FAIL: hello-pc-static needs libdiscovery.so"; exit 1; }
run "pkg-config --static, libdiscovery.a" "$work/hello-pc-static"

for kind in shared static; do
  flag=OFF; [ $kind = static ] && flag=ON
  cmake -S "$here/consumer" -B "$work/cmake-$kind" -DCMAKE_PREFIX_PATH="$prefix" \
    -DHELLO_STATIC=$flag >"$work/cmake-$kind.log" || { cat "$work/cmake-$kind.log"; exit 1; }
  cmake --build "$work/cmake-$kind" >>"$work/cmake-$kind.log" || { cat "$work/cmake-$kind.log"; exit 1; }
  run "find_package(discovery), $kind" "$work/cmake-$kind/hello"
done
needed "$work/cmake-static/hello" | grep -q libdiscovery && { echo "FAIL: the static CMake build needs libdiscovery.so"; exit 1; }
echo "ok: installed prefix works with pkg-config and find_package, shared and static"
