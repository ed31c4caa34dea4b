#!/usr/bin/env bash
# contrib/systemd/discoveryd.service passes `systemd-analyze verify`, with its
# ExecStart pointed at the discoveryd just built (verify wants the binary).
# Usage: systemd_unit.sh UNIT DISCOVERYD
set -euo pipefail
unit=$1 discoveryd=$2
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze is missing (Debian: systemd; scripts/deps.sh test)"; exit 77
fi
grep -q '^ExecStart=/usr/sbin/discoveryd ' "$unit" || { echo "FAIL: ExecStart is not /usr/sbin/discoveryd"; exit 1; }
for want in 'StateDirectory=discovery' '--data /var/lib/discovery/discovery.db' \
    '--config /etc/discovery/discoveryd.yaml' 'DynamicUser=yes' 'ProtectSystem=strict' \
    'NoNewPrivileges=yes' 'CapabilityBoundingSet=$'; do
  grep -q -e "$want" "$unit" || { echo "FAIL: the unit lacks $want"; exit 1; }
done
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/sbin/discoveryd|$discoveryd|" "$unit" >"$dir/discoveryd.service"
# --man=no: the man pages need not be installed on the build machine.
out=$(systemd-analyze verify --man=no "$dir/discoveryd.service" 2>&1) || {
  echo "FAIL: systemd-analyze verify:"; echo "$out"; exit 1; }
if [ -n "$out" ]; then
  echo "FAIL: systemd-analyze verify warns:"; echo "$out"; exit 1
fi
echo "ok: systemd-analyze verify is clean"
