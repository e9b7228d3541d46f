#!/usr/bin/env bash
# The image tarball imported with containerd's client, `ctr images import` (what `kind load
# image-archive` runs on each node), into a private containerd started for the test, then run
# there as a real container (runc): `tether-csi --version`. Run as root.
# Usage: tests/install/ctr.sh IMAGE.tar NAME:TAG
set -euo pipefail
image=$(realpath "$1") tag=$2
# shellcheck source=tests/install/await.sh
. "$(dirname "$0")/await.sh"
work=$(mktemp -d)
pid=
cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "test-install-image: $*" >&2; exit 1; }

# Its own root, state and socket, and no CRI plugin: nothing of a containerd the machine may run.
cat >"$work/config.toml" <<TOML
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
TOML
mkfifo "$work/log.fifo"
containerd --config "$work/config.toml" 2>"$work/log.fifo" &
pid=$!
await_line "$work/log.fifo" "$work/containerd.log" "containerd successfully booted" \
	|| fail "containerd stopped before serving: $(tail -n 20 "$work/containerd.log")"

ctr=(ctr --address "$work/containerd.sock" --namespace tether-install)
# The native snapshotter copies layers instead of mounting overlays, so it works in any sandbox.
"${ctr[@]}" images import --snapshotter native "$image"
# A name without a registry is Docker Hub's, as kubelet resolves the manifests' image: too.
ref=$tag
[[ $ref == */* ]] || ref=docker.io/library/$ref
"${ctr[@]}" images ls -q | grep -qxF "$ref" || fail "ctr imported no image named $ref: $("${ctr[@]}" images ls -q)"
version=$("${ctr[@]}" run --rm --snapshotter native "$ref" tether-install-version /tether-csi --version)
[[ $version == "tether-csi "* ]] || fail "the container printed '$version'"
echo "test-install-image: ctr imported $ref and ran it: $version"
