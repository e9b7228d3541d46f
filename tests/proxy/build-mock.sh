#!/usr/bin/env bash
# Builds the Kubernetes e2e mock CSI driver (tests/proxy/mock/main.go over the mock service of
# k8s.io/kubernetes at the tier's K8S_VERSION) from the Go module proxy into the tier's cache,
# keyed by that version and by main.go's content, and reuses it when present (a build for another
# key is removed). Prints the binary's path on stdout.
#
# k8s.io/kubernetes cannot be required with its own replaces, so the module here takes the
# staging-module replaces from the tier's throwaway module (tests/k8s/build.sh writes it; run that
# first): one list of them, in one place.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../k8s/paths.sh
source "$here/../k8s/paths.sh"
key="$K8S_VERSION-$(sha256sum "$here/mock/main.go" | cut -c1-12)"
out="$k8s_cache/csi-mock-$key/csi-mock"
if [[ -x $out ]]; then echo "$out"; exit 0; fi
for old in "$k8s_cache"/csi-mock-*/; do
	[[ $old == "$k8s_cache/csi-mock-$key/" ]] || rm -rf "$old"
done
tier_mod="$k8s_root/src/go.mod"
[[ -f $tier_mod ]] || { echo "csi-mock: $tier_mod is missing; run tests/k8s/build.sh first" >&2; exit 1; }
GO=${GO:-go}
export GOFLAGS="-mod=mod -p=${TETHER_K8S_BUILD_JOBS:-2}" GOTOOLCHAIN=local CGO_ENABLED=0
export GOMODCACHE="$k8s_cache/gomod" GOCACHE="$k8s_cache/gocache-csi-mock"
src=$(mktemp -d)
trap 'rm -rf "$src" "$GOCACHE"' EXIT
cp "$here/mock/main.go" "$src/"
{
	printf 'module tether.invalid/csi-mock\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes %s\n\n' "$K8S_VERSION"
	sed -n '/^replace (/,/^)/p' "$tier_mod"
} >"$src/go.mod"
mkdir -p "$(dirname "$out")"
echo "csi-mock: building the e2e mock CSI driver of k8s.io/kubernetes $K8S_VERSION into $out" >&2
(cd "$src" && nice -n 15 "$GO" build -trimpath -ldflags "-s -w" -o "$out.tmp" .)
mv "$out.tmp" "$out"
echo "$out"
