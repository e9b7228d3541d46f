#!/usr/bin/env bash
# Runs test_grpcio.py (pytest, warnings as errors) against tether-csi on a temporary Unix
# socket, after generating the CSI stubs with grpcio-tools; then stops the driver with
# SIGTERM and checks that it exits 0. The driver is stopped on every exit path.
# Usage: run.sh [--bench] <tether-csi binary> <python of a venv with requirements.txt>
# With --bench it runs bench_grpcio.py (timings, no assertions) instead of the tests.
set -euo pipefail
script=(-m pytest -W error -p no:cacheprovider -v test_grpcio.py)
if [[ ${1:-} == --bench ]]; then script=(bench_grpcio.py); shift; fi
bin=$(realpath "$1")
# Not realpath: a venv's python is a symlink whose location is what makes it the venv's.
python=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

work=$(mktemp -d /tmp/tether-interop.XXXXXX)
sock="$work/csi.sock"
pid=
cleanup() {
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir "$work/stubs"
"$python" -m grpc_tools.protoc -I "$root/driver/proto" --python_out="$work/stubs" --grpc_python_out="$work/stubs" csi.proto

"$bin" --endpoint "unix://$sock" --node-id node-1 --nodes node-2,node-3 --state-dir "$work/state" \
    --metrics-address "" 2>"$work/driver.log" &
pid=$!
for _ in $(seq 100); do [[ -S $sock ]] && break; kill -0 "$pid" || { cat "$work/driver.log"; exit 1; }; sleep 0.1; done
[[ -S $sock ]] || { echo "driver did not create $sock"; cat "$work/driver.log"; exit 1; }

status=0
(cd "$here" && TETHER_CSI_SOCKET=$sock TETHER_CSI_STUBS="$work/stubs" "$python" "${script[@]}") || status=$?

kill -TERM "$pid"
wait "$pid" || { echo "tether-csi exited $? after SIGTERM (expected 0)"; cat "$work/driver.log"; exit 1; }
pid=
if [[ $status -ne 0 ]]; then
    echo "--- driver log (last 80 lines) ---"; tail -n 80 "$work/driver.log"
fi
exit "$status"
