#!/usr/bin/env bash
# Runs the whole csi-sanity suite against tether-csi over a Unix socket. Run as root: the
# Node service's bind mounts are real. Then stops the driver with SIGTERM and checks that it
# exits 0 and removes its socket.
# Usage: sanity.sh <tether-csi binary> <csi-sanity binary> [extra csi-sanity flags...]
set -euo pipefail
bin=$(realpath "$1")
sanity=$(realpath "$2")
shift 2

work=$(mktemp -d /tmp/tether-sanity.XXXXXX)
sock="$work/csi.sock"
pid=
cleanup() {
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
    # Anything csi-sanity left mounted must not outlive the run.
    grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" --endpoint "unix://$sock" --node-id sanity-node --state-dir "$work/state" \
    --metrics-address "" --capacity-bytes $((64 << 30)) 2>"$work/driver.log" &
pid=$!
for _ in $(seq 100); do [[ -S $sock ]] && break; kill -0 "$pid" || { cat "$work/driver.log"; exit 1; }; sleep 0.1; done
[[ -S $sock ]] || { echo "driver did not create $sock"; cat "$work/driver.log"; exit 1; }

status=0
"$sanity" --csi.endpoint "$sock" --csi.mountdir "$work/target" --csi.stagingdir "$work/staging" \
    --ginkgo.no-color "$@" || status=$?

kill -TERM "$pid"
wait "$pid" || { echo "tether-csi exited $? after SIGTERM (expected 0)"; cat "$work/driver.log"; exit 1; }
pid=
[[ ! -e $sock ]] || { echo "tether-csi left its socket $sock behind"; exit 1; }
if [[ $status -ne 0 ]]; then
    echo "--- driver log (last 80 lines) ---"; tail -n 80 "$work/driver.log"
fi
exit "$status"
