#!/usr/bin/env bash
# libdiscovery.so.0 exports the dsc_* API and nothing else: no dsi_* internals,
# no generated protobuf code, nothing of nng, protobuf-c or mbedTLS; and its
# SONAME carries the ABI version. Usage: symbols.sh LIBDISCOVERY_SO HEADER_DIR
set -euo pipefail
lib=$1 include=$2
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libdiscovery.so.0 ] || { echo "FAIL: SONAME is '$soname', not libdiscovery.so.0"; exit 1; }
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sort)
bad=$(grep -v '^dsc_' <<<"$exported" || true)
if [ -n "$bad" ]; then
  echo "FAIL: libdiscovery exports names outside dsc_*:"; echo "$bad"; exit 1
fi
# Each function the headers declare DSC_API is exported, and only those.
declared=$(sed -n 's/^DSC_API [^(]*[ *]\(dsc_[a-z0-9_]*\)(.*/\1/p' "$include"/discovery/*.h* | sort -u)
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
extra=$(comm -13 <(echo "$declared") <(echo "$exported"))
[ -z "$missing" ] || { echo "FAIL: declared DSC_API but not exported:"; echo "$missing"; exit 1; }
[ -z "$extra" ] || { echo "FAIL: exported but not declared DSC_API:"; echo "$extra"; exit 1; }
echo "ok: SONAME $soname, $(wc -l <<<"$exported") symbols, all dsc_* and all declared"
