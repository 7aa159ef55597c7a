#!/usr/bin/env bash
# libackring_c exports exactly the functions ackring.h declares, nothing else
# (no C++ symbol of the library inside it), and has the SONAME libackring_c.so.1.
# Usage: check_exports.sh <libackring_c.so> <ackring.h>
set -euo pipefail
lib="$1" header="$2"
fail() { echo "check_exports: FAIL: $*" >&2; exit 1; }

soname="$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[ "$soname" = libackring_c.so.1 ] || fail "SONAME is '$soname', expected libackring_c.so.1"

# Defined dynamic symbols, without the version node itself (type A).
exported="$(nm -D --defined-only "$lib" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u)"
foreign="$(grep -v '^ackring_' <<<"$exported" || true)"
[ -z "$foreign" ] || fail "exports symbols other than ackring_*: $(head -n 20 <<<"$foreign" | tr '\n' ' ')"

declared="$(tr '\n' ' ' <"$header" | grep -o 'ACKRING_API [^;(]*(' | grep -o 'ackring_[a-z_]*($' | tr -d '(' | sort -u)"
[ -n "$declared" ] || fail "found no ACKRING_API declarations in $header"
missing="$(comm -23 <(echo "$declared") <(echo "$exported"))"
extra="$(comm -13 <(echo "$declared") <(echo "$exported"))"
[ -z "$missing" ] || fail "declared in ackring.h but not exported: $(echo $missing)"
[ -z "$extra" ] || fail "exported but not declared in ackring.h: $(echo $extra)"
echo "check_exports: OK: SONAME $soname, $(wc -l <<<"$exported") ackring_* functions, nothing else"
