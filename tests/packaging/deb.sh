#!/usr/bin/env bash
# The Debian packages, end to end: configures a /usr build of SOURCE_DIR in
# WORK_DIR, makes the .debs with CPack, checks their file lists and computed
# dependencies, installs them with dpkg -i, runs the installed discoveryd
# --version, builds tests/packaging/consumer/hello.c against the installed
# libdiscovery-dev (pkg-config and find_package) and runs it against the
# installed discoveryd on loopback port 0, then purges the packages again.
# Needs root (dpkg -i); exits 77 (skipped) otherwise, or when the packages
# are already installed (the test would not leave the machine as it was).
# Usage: deb.sh SOURCE_DIR WORK_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$1 work=$2
# shellcheck source=lib.sh
. "$here/lib.sh"
packages=(discoveryd libdiscovery-dev libdiscovery0)

if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: the .deb test installs packages with dpkg -i and needs root"; exit 77
fi
for tool in dpkg-deb dpkg-shlibdeps cpack; do
  command -v $tool >/dev/null || { echo "SKIP: $tool is missing (scripts/deps.sh test)"; exit 77; }
done
for p in "${packages[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    echo "SKIP: $p is installed already; this test would remove it"; exit 77
  fi
done

echo "== build $work (prefix /usr) and cpack"
cmake -S "$src" -B "$work" -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBUILD_TESTING=OFF -DDISCOVERY_BENCH=OFF >"$work.configure.log" 2>&1 ||
  { cat "$work.configure.log"; exit 1; }
cmake --build "$work" -j2 >"$work.build.log" 2>&1 || { tail -50 "$work.build.log"; exit 1; }
rm -rf "$work/packages"
(cd "$work" && cpack -G DEB >"$work.cpack.log" 2>&1) || { cat "$work.cpack.log"; exit 1; }

deb() { find "$work/packages" -maxdepth 1 -name "$1_*.deb" | head -n 1; }
fail=0
for p in "${packages[@]}"; do
  [ -n "$(deb "$p")" ] || { echo "FAIL: cpack made no $p package"; ls "$work/packages"; exit 1; }
done

# contents [-q] PACKAGE PATH...: each PATH is in the package; without -q, shows its control fields.
contents() {
  local quiet=0 p f list
  [ "$1" = -q ] && { quiet=1; shift; }
  p=$1
  shift
  list=$(dpkg-deb -c "$(deb "$p")" | awk '{print $6}' | sed 's|^\./|/|')
  if [ $quiet -eq 0 ]; then
    echo "-- $p"; dpkg-deb -f "$(deb "$p")" Package Version Depends | sed 's/^/   /'
  fi
  for f in "$@"; do
    grep -qx -- "$f" <<<"$list" || { echo "FAIL: $p lacks $f"; fail=1; }
  done
  # Nothing of the other packages, nothing outside the Debian tree.
  if grep -vE '^/(usr/(s?bin|lib|include|share)|etc)(/|$)' <<<"$list" | grep -vxE '/|/usr/'; then
    echo "FAIL: $p installs outside /usr and /etc (above)"; fail=1
  fi
}
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
lib=/usr/lib/$multiarch
contents discoveryd /usr/sbin/discoveryd /usr/bin/discoveryctl /etc/discovery/discoveryd.yaml \
  /usr/lib/systemd/system/discoveryd.service
contents libdiscovery0 "$lib/libdiscovery.so.0" "$lib/libdiscovery.so.$(dpkg-deb -f "$(deb libdiscovery0)" Version)"
contents libdiscovery-dev /usr/include/discovery/discovery.h /usr/include/discovery/version.h \
  /usr/include/discovery/export.h "$lib/libdiscovery.so" "$lib/libdiscovery.a" \
  "$lib/pkgconfig/discovery.pc" "$lib/cmake/discovery/discoveryConfig.cmake"
for p in "${packages[@]}"; do
  contents -q "$p" "/usr/share/doc/$p/copyright"
done
# The man pages, once docs/man exists (its own branch until merged).
if [ -f "$src/docs/man/CMakeLists.txt" ]; then
  contents -q discoveryd /usr/share/man/man8/discoveryd.8 /usr/share/man/man1/discoveryctl.1 \
    /usr/share/man/man5/discoveryd.yaml.5 /usr/share/man/man7/discovery.7
  contents -q libdiscovery-dev /usr/share/man/man3/libdiscovery.3
fi
dpkg-deb -c "$(deb libdiscovery0)" | grep -qE 'include|\.a$|pkgconfig' && { echo "FAIL: libdiscovery0 holds development files"; fail=1; }
dpkg-deb -c "$(deb discoveryd)" | grep -q 'libdiscovery\.so' && { echo "FAIL: discoveryd holds the library"; fail=1; }
# Computed by dpkg-shlibdeps: the library's and the daemon's run-time libraries.
dpkg-deb -f "$(deb libdiscovery0)" Depends | grep -q 'libnng1' || { echo "FAIL: libdiscovery0 does not depend on libnng1"; fail=1; }
dpkg-deb -f "$(deb discoveryd)" Depends | grep -q 'libcurl4' || { echo "FAIL: discoveryd does not depend on libcurl4"; fail=1; }
rm -rf "$work/discoveryd.control"
dpkg-deb -e "$(deb discoveryd)" "$work/discoveryd.control"
grep -qx /etc/discovery/discoveryd.yaml "$work/discoveryd.control/conffiles" || { echo "FAIL: the configuration is not a conffile"; fail=1; }
[ $fail -eq 0 ] || exit 1

scratch=$(mktemp -d)
# From here on the machine changes: undo it whatever happens.
cleanup() {
  stop_discoveryd
  dpkg -P "${packages[@]}" >/dev/null 2>&1 || true
  rm -rf "$scratch"
}
trap cleanup EXIT
echo "== dpkg -i"
dpkg -i "$(deb libdiscovery0)" "$(deb libdiscovery-dev)" "$(deb discoveryd)"
/usr/sbin/discoveryd --version
/usr/bin/discoveryctl --version
ldconfig -p | grep -q 'libdiscovery.so.0 ' || { echo "FAIL: ldconfig does not know libdiscovery.so.0"; exit 1; }

start_discoveryd /usr/sbin/discoveryd
# shellcheck disable=SC2046
cc -Wall -Werror -o "$scratch/hello-pc" "$here/consumer/hello.c" $(pkg-config --cflags --libs discovery)
"$scratch/hello-pc" "$url"
cmake -S "$here/consumer" -B "$scratch/cmake" >/dev/null && cmake --build "$scratch/cmake" >/dev/null
"$scratch/cmake/hello" "$url"
stop_discoveryd

echo "== dpkg -P"
dpkg -P "${packages[@]}"
trap 'rm -rf "$scratch"' EXIT
for f in /usr/sbin/discoveryd /usr/bin/discoveryctl "$lib/libdiscovery.so.0" /etc/discovery \
    /usr/include/discovery "$lib/pkgconfig/discovery.pc"; do
  [ ! -e "$f" ] || { echo "FAIL: $f is left after dpkg -P"; exit 1; }
done
echo "ok: the packages build, install, work and purge cleanly"
