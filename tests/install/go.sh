#!/usr/bin/env bash
# A Go program in a throwaway module outside the repository requires the package (through a
# replace to the checkout, as a driver would through `go get` once it is published), builds with
# PKG_CONFIG_PATH alone, offline, and runs a publish and a conflict: statically linked by
# default, against libtether.so with -tags tether_shared.
# Usage: tests/install/go.sh PREFIX PACKAGE_DIR MODULE_PATH ABI
set -euo pipefail
prefix=$(realpath "$1") package=$(realpath "$2") module=$3 abi=$4
go=${GO:-go}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "test-install-go: $*" >&2; exit 1; }

cd "$work"
cat > main.go <<GO
// A user's program: one publish, then a second writer refused.
package main

import (
	"errors"
	"fmt"
	"os"

	tether "$module"
)

func main() {
	engine, err := tether.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer engine.Close()
	rwo := tether.Access{Mode: tether.RWO}
	if _, err := engine.Publish("pvc-1", "node-a", rwo); err != nil {
		fmt.Fprintln(os.Stderr, "publish:", err)
		os.Exit(1)
	}
	_, err = engine.Publish("pvc-1", "node-b", rwo)
	var conflict *tether.ConflictError
	if !errors.As(err, &conflict) {
		fmt.Fprintln(os.Stderr, "the second writer was not refused with a ConflictError:", err)
		os.Exit(1)
	}
	fmt.Println("conflict: held by", conflict.AttachedTo)
}
GO
"$go" mod init example.test/tether-user >/dev/null 2>&1
"$go" mod edit -require="$module@v0.0.0" -replace="$module=$package"

# Nothing but PKG_CONFIG_PATH points at the library; no proxy is asked for anything.
build() { env -u CGO_CFLAGS -u CGO_LDFLAGS GOWORK=off GOPROXY=off GOFLAGS= CGO_ENABLED=1 \
	PKG_CONFIG_PATH="$prefix/lib/pkgconfig" "$go" build "$@"; }

build -o static .
if readelf -d static | grep -q 'NEEDED.*libtether'; then fail "the default build needs libtether.so; it should carry the archive"; fi
[ "$(./static)" = "conflict: held by [node-a]" ] || fail "the static program printed '$(./static)'"

build -tags tether_shared -o shared .
readelf -d shared | grep -q "NEEDED.*\[libtether.so.$abi\]" || fail "the tether_shared build does not need libtether.so.$abi"
[ "$(LD_LIBRARY_PATH=$prefix/lib ./shared)" = "conflict: held by [node-a]" ] || fail "the shared program failed"
echo "test-install-go: a module outside the checkout built against $prefix (static and shared) and ran"
