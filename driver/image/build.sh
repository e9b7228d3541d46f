#!/usr/bin/env bash
# Builds the tether-csi image tarball: the binary, without its debug sections, and exactly the
# shared libraries ldd says it loads (the C library and its loader, libgcc_s, libm), at the paths
# the binary asks for, on an empty base. No musl target is installed here (and rustup cannot
# download one), so the glibc binary brings its libraries along; nothing else is in the image.
# Usage: driver/image/build.sh BINARY NAME:TAG OUT.tar
set -euo pipefail
bin=$(realpath "$1") tag=$2 out=$(realpath -m "$3")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"

# Debug sections off (the symbol table stays, so a panic's backtrace still names functions).
objcopy --strip-debug "$bin" "$root/tether-csi"
# ldd lines are "name => /path (addr)" or, for the loader, "/path (addr)"; the vDSO has no file.
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | while read -r lib; do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
(cd "$root" && find . -type f -printf '  /%P: %s bytes\n' | sort)

# Reproducible: the same binary gives the same layer, hence the same image digest.
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf "$work/rootfs.tar" .
mkdir -p "$(dirname "$out")"
(cd "$here" && GOFLAGS=-mod=readonly go run . -rootfs "$work/rootfs.tar" -tag "$tag" -entrypoint /tether-csi \
	-arch "$(go env GOARCH)" -o "$out")
echo "image $tag: $out, $(stat -c %s "$out") bytes"
