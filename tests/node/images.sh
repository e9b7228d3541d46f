#!/usr/bin/env bash
# Builds the node tier's container images without a registry or docker, as OCI tarballs that
# `ctr -n k8s.io images import` takes (oci.py writes them). Prints the folder holding them.
#
#   pause.tar    registry.k8s.io/pause:3.10 (and :3.10.1, kubelet 1.34's default), pause.c of
#                the k8s.io/kubernetes module in the tier's cache, compiled static with gcc the
#                way build/pause/Makefile does (-Os -Wall -Werror -static -DVERSION=...)
#   busybox.tar  registry.k8s.io/e2e-test-images/busybox:1.36.1-1, Debian's busybox-static
#                (the pinned .deb, fetched with apt-get download) with a link per applet in /bin
#
# Cached in ${TETHER_K8S_CACHE:-~/.cache/tether-k8s}/node-images-<k8s>-<busybox>/; needs gcc and the
# static libc (libc6-dev), and that tests/k8s/build.sh has run (the module is in its cache).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=inputs.sh
source "$here/inputs.sh"

out="$k8s_cache/node-images-$K8S_VERSION-busybox-${BUSYBOX_STATIC_VERSION//[:~+]/_}"
if [[ -s $out/pause.tar && -s $out/busybox.tar ]]; then
	echo "$out"
	exit 0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/tether-node-images.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/out"

pause_c="$k8s_cache/gomod/k8s.io/kubernetes@$K8S_VERSION/build/pause/linux/pause.c"
if [[ ! -f $pause_c ]]; then
	(cd "$k8s_root/src" && GOMODCACHE="$k8s_cache/gomod" GOFLAGS=-mod=mod go mod download "k8s.io/kubernetes@$K8S_VERSION")
fi
gcc -Os -Wall -Werror -static "-DVERSION=v$PAUSE_TAG-tether" -o "$work/pause" "$pause_c"
"$here/oci.py" "$work/out/pause.tar" --name "registry.k8s.io/pause:$PAUSE_TAG" \
	--name "registry.k8s.io/pause:3.10.1" --entrypoint /pause --user 65535:65535 --file "$work/pause:/pause"

deb_extract busybox-static "$BUSYBOX_STATIC_VERSION" "$work/bb"
links=()
for applet in $("$work/bb/bin/busybox" --list); do
	[[ $applet == busybox ]] || links+=(--symlink "/bin/$applet:busybox")
done
"$here/oci.py" "$work/out/busybox.tar" --name "$BUSYBOX_IMAGE" --cmd sh \
	--file "$work/bb/bin/busybox:/bin/busybox" "${links[@]}" --dir /tmp --dir /etc --dir /root

mkdir -p "$out"
mv "$work/out/pause.tar" "$work/out/busybox.tar" "$out/"
echo "$out"
