#!/usr/bin/env bash
# Builds the node tier's container images without a registry or docker, as OCI tarballs that
# `ctr -n k8s.io images import` takes (oci.py writes them). Prints the folder holding them.
#
#   pause.tar    registry.k8s.io/pause:3.10 (and :3.10.1, kubelet 1.34's default), pause.c of
#                the k8s.io/kubernetes module in the tier's cache, compiled static with gcc the
#                way build/pause/Makefile does (-Os -Wall -Werror -static -DVERSION=...)
#   busybox.tar  registry.k8s.io/e2e-test-images/busybox:1.36.1-1 and :1.37.0-1 (e2e.test's),
#                also named nginx:1.14-4 (a stand-in, see versions.env); Debian's busybox-static
#                (the pinned .deb, fetched with apt-get download) with a link per applet in /bin
#   jessie.tar   registry.k8s.io/e2e-test-images/jessie-dnsutils:1.7, a stand-in: the busybox
#                files with GNU dd from Debian's coreutils, dash as /bin/sh and the libc both link
#   agnhost.tar  registry.k8s.io/e2e-test-images/agnhost:2.56, the e2e suite's test image: the
#                agnhost binary build.sh made from the same module as e2e.test, on top of the
#                busybox files (its tests run shell commands in it), entrypoint /agnhost, as the
#                upstream image (which is Alpine with more tools) has it
#
# Cached in ${TETHER_K8S_CACHE:-~/.cache/tether-k8s}/node-images-<k8s>-<busybox>/; needs gcc and the
# static libc (libc6-dev), and that tests/k8s/build.sh has run (the module is in its cache).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=inputs.sh
source "$here/inputs.sh"

out="$k8s_cache/node-images-$K8S_VERSION-busybox-${BUSYBOX_STATIC_VERSION//[:~+]/_}"
# Keyed by the images' names too: a new name builds anew.
out="$out-$(echo "$BUSYBOX_IMAGE $E2E_BUSYBOX_IMAGE $E2E_JESSIE_IMAGE $COREUTILS_VERSION $LIBC6_VERSION $DASH_VERSION $E2E_NGINX_IMAGE $E2E_AGNHOST_IMAGE" | cksum | cut -d' ' -f1)"
if [[ -s $out/pause.tar && -s $out/busybox.tar && -s $out/agnhost.tar && -s $out/jessie.tar ]]; then
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
# busybox_files [APPLET...]: the busybox files as oci.py arguments, one a line, without the
# links of the APPLETs given.
busybox_files() {
	printf '%s\n' --file "$work/bb/bin/busybox:/bin/busybox" --dir /tmp --dir /etc --dir /root
	for applet in $("$work/bb/bin/busybox" --list); do
		[[ $applet == busybox || " $* " == *" $applet "* ]] || printf '%s\n' --symlink "/bin/$applet:busybox"
	done
}
mapfile -t busybox < <(busybox_files)
"$here/oci.py" "$work/out/busybox.tar" --name "$BUSYBOX_IMAGE" --name "$E2E_BUSYBOX_IMAGE" \
	--name "$E2E_NGINX_IMAGE" --cmd sh "${busybox[@]}"

deb_extract coreutils "$COREUTILS_VERSION" "$work/gnu"
deb_extract libc6 "$LIBC6_VERSION" "$work/gnu"
# GNU dd in place of the busybox applet, and dash as /bin/sh: busybox's own shell runs its dd
# applet whatever /bin/dd is.
deb_extract dash "$DASH_VERSION" "$work/gnu"
mapfile -t jessie < <(busybox_files dd sh)
gnu_dd=(--file "$work/gnu/bin/dd:/bin/dd" --file "$work/gnu/bin/dash:/bin/dash" --symlink /bin/sh:dash
	--file "$work/gnu/lib/x86_64-linux-gnu/libc.so.6:/lib/x86_64-linux-gnu/libc.so.6"
	--file "$work/gnu/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2:/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
	--symlink /lib64/ld-linux-x86-64.so.2:/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2)
"$here/oci.py" "$work/out/jessie.tar" --name "$E2E_JESSIE_IMAGE" --cmd sh "${gnu_dd[@]}" "${jessie[@]}"

[[ -x $k8s_bin/agnhost ]] || { echo "images.sh: no $k8s_bin/agnhost (run tests/k8s/build.sh)" >&2; exit 1; }
"$here/oci.py" "$work/out/agnhost.tar" --name "$E2E_AGNHOST_IMAGE" --entrypoint /agnhost --cmd pause \
	--file "$k8s_bin/agnhost:/agnhost" --symlink /agnhost-2:agnhost --dir /uploads "${busybox[@]}"

mkdir -p "$out"
mv "$work/out/pause.tar" "$work/out/busybox.tar" "$work/out/agnhost.tar" "$work/out/jessie.tar" "$out/"
echo "$out"
