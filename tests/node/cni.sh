#!/usr/bin/env bash
# The CNI plugins a node's containerd runs (bridge, host-local, loopback), from Debian's pinned
# containernetworking-plugins, extracted (not installed) into the tier's cache. Prints their folder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=inputs.sh
source "$here/inputs.sh"

out="$k8s_cache/cni-plugins-${CNI_PLUGINS_VERSION//[:~+]/_}"
if [[ ! -x $out/bridge ]]; then
	work=$(mktemp -d "${TMPDIR:-/tmp}/tether-cni.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	deb_extract containernetworking-plugins "$CNI_PLUGINS_VERSION" "$work"
	mkdir -p "$out"
	cp "$work/usr/lib/cni/bridge" "$work/usr/lib/cni/host-local" "$work/usr/lib/cni/loopback" "$out/"
fi
echo "$out"
