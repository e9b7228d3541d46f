#!/usr/bin/env bash
# csi-sanity against the e2e mock CSI driver alone, then through tether-csi --upstream in front of
# a fresh mock, with attach enabled and with attach disabled: every test that passes alone must
# pass through the proxy, except those listed in sanity-known.txt (each with its reason).
# Usage: sanity.sh <tether-csi binary> <csi-sanity binary> <csi-mock binary>
set -euo pipefail
bin=$(realpath "$1") sanity=$(realpath "$2") mock=$(realpath "$3")
here=$(cd "$(dirname "$0")" && pwd)
node=sanity-node
work=$(mktemp -d /tmp/tether-proxy-sanity.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null && { wait "$p"; } 2>/dev/null || true; done
    grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# wait_socket PID SOCKET LOG
wait_socket() {
    for _ in $(seq 100); do [[ -S $2 ]] && return 0; kill -0 "$1" || { cat "$3"; exit 1; }; sleep 0.1; done
    echo "no socket $2"; cat "$3"; exit 1
}

# run_sanity SOCKET REPORT: csi-sanity's own verdict does not stop the script; the reports do.
run_sanity() {
    rm -rf "$work/target" "$work/staging"
    "$sanity" --csi.endpoint "$1" --csi.mountdir "$work/target" --csi.stagingdir "$work/staging" \
        --ginkgo.no-color --ginkgo.junit-report "$2" >"$2.log" 2>&1 || true
}

# start_mock SOCKET [FLAGS...]: a fresh mock, so both runs start from the same state.
start_mock() {
    local sock=$1; shift
    "$mock" -endpoint "$sock" -name "$node" "$@" 2>"$sock.log" &
    pids+=($!)
    wait_socket $! "$sock" "$sock.log"
}

status=0
for mode in attach no-attach; do
    flags=()
    [[ $mode == no-attach ]] && flags=(-disable-attach)
    start_mock "$work/alone-$mode.sock" "${flags[@]}"
    run_sanity "$work/alone-$mode.sock" "$work/alone-$mode.xml"
    start_mock "$work/upstream-$mode.sock" "${flags[@]}"
    "$bin" --endpoint "unix://$work/tether-$mode.sock" --upstream "unix://$work/upstream-$mode.sock" \
        --node-id "$node" --state-dir "$work/state-$mode" --metrics-address "" 2>"$work/tether-$mode.log" &
    pids+=($!)
    wait_socket $! "$work/tether-$mode.sock" "$work/tether-$mode.log"
    run_sanity "$work/tether-$mode.sock" "$work/proxy-$mode.xml"
    echo "--- csi-sanity, mock $mode: alone vs through tether-csi --upstream ---"
    python3 "$here/compare.py" "$work/alone-$mode.xml" "$work/proxy-$mode.xml" "$here/sanity-known.txt" "$mode" || {
        status=1
        echo "--- tether-csi log (last 60 lines) ---"; tail -n 60 "$work/tether-$mode.log"
    }
done
exit "$status"
