#!/usr/bin/env bash
# The C test program (tests/c) built from an installed prefix with nothing but pkg-config, once
# against the shared library and once against the archive, and run; the shared library's
# SONAME and exported symbols checked with readelf and nm.
# Usage: tests/install/c.sh PREFIX VERSION ABI   (ABI is <major>.<minor>, the SONAME's suffix)
set -euo pipefail
prefix=$(realpath "$1") version=$2 abi=$3
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cc=${CC:-gcc}
cflags=(-std=c11 -Wall -Wextra -Wpedantic -Werror -O1)
fail() { echo "test-install-c: $*" >&2; exit 1; }

lib=$prefix/lib/libtether.so.$version
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libtether.so.$abi" ] || fail "$lib has SONAME '$soname', not libtether.so.$abi"
[ "$(readlink "$prefix/lib/libtether.so.$abi")" = "libtether.so.$version" ] || fail "libtether.so.$abi does not point at libtether.so.$version"
[ "$(readlink "$prefix/lib/libtether.so")" = "libtether.so.$abi" ] || fail "libtether.so does not point at libtether.so.$abi"
exported=$(nm -D --defined-only "$lib" | awk '{print $3}')
[ -n "$exported" ] || fail "$lib exports nothing"
others=$(grep -v '^tether_' <<<"$exported" || true)
[ -z "$others" ] || fail "$lib exports symbols outside tether_*: $others"
echo "$lib: SONAME $soname, $(wc -l <<<"$exported") exported symbols, all tether_*"
# The test hook (the `test-hooks` feature, for the panic-boundary tests) is not installed: not in
# the libraries, not in the header.
! grep -qx tether_debug_panic <<<"$exported" || fail "$lib exports the test hook tether_debug_panic"
! nm --defined-only "$prefix/lib/libtether.a" 2>/dev/null | grep -qw tether_debug_panic \
	|| fail "libtether.a defines the test hook tether_debug_panic"
! grep -q tether_debug_panic "$prefix/include/tether.h" || fail "tether.h declares the test hook tether_debug_panic"

# Shared: found at run time through LD_LIBRARY_PATH, as for any library outside the loader's path.
# shellcheck disable=SC2046 # pkg-config's output is a list of flags
"$cc" "${cflags[@]}" tests/c/*.c $(pkg-config --cflags --libs tether) -o "$out/shared"
readelf -d "$out/shared" | grep -q "NEEDED.*\[libtether.so.$abi\]" || fail "the shared build does not need libtether.so.$abi"
RUST_BACKTRACE=0 LD_LIBRARY_PATH=$prefix/lib "$out/shared"

# Static: the archive and what it needs from the system; the binary needs no libtether at all.
# shellcheck disable=SC2046
"$cc" "${cflags[@]}" tests/c/*.c $(pkg-config --static --define-variable=tether_library=:libtether.a --cflags --libs tether) \
	-o "$out/static"
if readelf -d "$out/static" | grep -q 'NEEDED.*libtether'; then fail "the static build still needs libtether.so"; fi
RUST_BACKTRACE=0 "$out/static"
echo "test-install-c: shared and static builds from $prefix ran"
