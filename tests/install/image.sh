#!/usr/bin/env bash
# The image tarball unpacked into a root filesystem, as a runtime would, and its entrypoint run
# with that folder as its root (chroot), so the test fails if the image needs anything from the
# host: `--version`, then the driver serving CSI on a Unix socket inside the root, answering a
# Probe; its log, written to a pipe, carries no ANSI escape sequences; SIGTERM stops it cleanly.
# Run as root (chroot). Usage: tests/install/image.sh IMAGE.tar NAME:TAG GRPCURL
set -euo pipefail
image=$(realpath "$1") tag=$2 grpcurl=$(realpath "$3")
repo=$(realpath "$(dirname "$0")/../..")
# shellcheck source=tests/install/await.sh
. "$repo/tests/install/await.sh"
work=$(mktemp -d)
pid=
cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "test-install-image: $*" >&2; exit 1; }

mkdir -p "$work/image" "$work/root"
tar -xf "$image" -C "$work/image"
# manifest.json names the image's tags, its config and its layers, in order.
read -r tags config layers < <(python3 - "$work/image/manifest.json" <<'PY'
import json, sys
[m] = json.load(open(sys.argv[1]))
print(",".join(m["RepoTags"]), m["Config"], ",".join(m["Layers"]))
PY
)
[ "$tags" = "$tag" ] || fail "the image is tagged '$tags', not $tag"
entrypoint=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["config"]["Entrypoint"][0])' "$work/image/$config")
IFS=, read -ra layer_files <<<"$layers"
for layer in "${layer_files[@]}"; do tar -xzf "$work/image/$layer" -C "$work/root"; done
echo "image $tag: entrypoint $entrypoint, $(du -sb "$work/root" | cut -f1) bytes unpacked"

version=$(chroot "$work/root" "$entrypoint" --version)
[[ $version == "tether-csi "* ]] || fail "--version printed '$version'"
echo "$version"

# The state folder and the socket's folder stand for the volumes a pod mounts.
mkdir -p "$work/root/state" "$work/root/csi"
mkfifo "$work/log.fifo"
chroot "$work/root" "$entrypoint" --endpoint unix:///csi/csi.sock --node-id image-node --state-dir /state \
	--metrics-address "" 2>"$work/log.fifo" &
pid=$!
await_line "$work/log.fifo" "$work/driver.log" "serving CSI" || fail "the driver stopped before serving: $(cat "$work/driver.log")"

probe=$("$grpcurl" -plaintext -import-path "$repo/driver/proto" -proto csi.proto "unix://$work/root/csi/csi.sock" \
	csi.v1.Identity/Probe)
echo "Probe: $(tr -d '\n' <<<"$probe")"
kill -TERM "$pid"
wait "$pid" || fail "tether-csi exited $? after SIGTERM (expected 0)"
pid=
wait
if grep -q $'\x1b' "$work/driver.log"; then fail "the log written to a pipe has ANSI escape sequences"; fi
[[ $(wc -l <"$work/driver.log") -ge 2 ]] || fail "the driver logged almost nothing: $(cat "$work/driver.log")"
echo "test-install-image: $tag ran from its own root filesystem; $(wc -l <"$work/driver.log") log lines, no colour codes"
