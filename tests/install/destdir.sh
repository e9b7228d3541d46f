#!/usr/bin/env bash
# A `make install DESTDIR=... PREFIX=...` lays out exactly the files a package would ship, and
# its pkg-config file names PREFIX (where they will live), not the staging folder.
# Usage: tests/install/destdir.sh DESTDIR PREFIX VERSION ABI
set -euo pipefail
destdir=$1 prefix=$2 version=$3 abi=$4
root=$destdir$prefix
expected=$(printf '%s\n' include/tether.h lib/libtether.a lib/libtether.so "lib/libtether.so.$abi" \
	"lib/libtether.so.$version" lib/pkgconfig/tether.pc | sort)
actual=$(cd "$root" && find . -type f -o -type l | sed 's|^\./||' | sort)
[ "$actual" = "$expected" ] || { printf 'DESTDIR install under %s differs:\n%s\n' "$root" \
	"$(diff <(echo "$expected") <(echo "$actual"))" >&2; exit 1; }
grep -qx "prefix=$prefix" "$root/lib/pkgconfig/tether.pc" || { echo "tether.pc does not say prefix=$prefix" >&2; exit 1; }
echo "test-install-c: DESTDIR install lays out $(wc -l <<<"$actual") files for $prefix"
