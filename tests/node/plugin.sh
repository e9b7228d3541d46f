#!/usr/bin/env bash
# tether-csi as the node plugin of a node.sh node, registering itself with that node's kubelet
# (no node-driver-registrar image here): `--store=kubernetes --node-plugin`, the node identity's
# kubeconfig, its CSI socket in the kubelet's plugins folder and its registration socket in the
# kubelet's plugins_registry, both under DIR. It runs in the node's cgroup, so `node.sh stop`
# stops it too (first, with SIGTERM, so that it removes its registration socket).
#
#   plugin.sh start DIR NAME [ARG...]   # DIR and NAME of a started node; ARGs go to tether-csi
#                                       # (e.g. --upstream); TETHER_CSI or the cargo build
#
# Needs TETHER_K8S_NODE_KUBECONFIG (tests/k8s/run.sh's environment). TETHER_PLUGIN_STATE_DIR is its
# --state-dir (default DIR/tether-state): the controller's, when the node stages Tether's own
# volumes, whose data are folders there (only where every node is this one machine).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../k8s/lib.sh
source "$here/../k8s/lib.sh"
# shellcheck source-path=SCRIPTDIR source=host.sh
source "$here/host.sh"

(($# >= 3)) && [[ $1 == start ]] || { echo "usage: plugin.sh start DIR NAME [ARG...]" >&2; exit 2; }
dir=$(cd "$2" && pwd) name=$3
shift 3
driver=tether.csi.dev
root="$dir/kubelet/root"
[[ -f $dir/host-changes && -d $root ]] || { echo "plugin.sh: no started node in $dir" >&2; exit 1; }
tether_csi=${TETHER_CSI:-}
if [[ -z $tether_csi ]]; then
	(cd "$repo" && nice cargo build -q -p tether-driver --locked --bin tether-csi)
	tether_csi=${CARGO_TARGET_DIR:-$repo/target}/debug/tether-csi
fi
state=${TETHER_PLUGIN_STATE_DIR:-$dir/tether-state}
mkdir -p "$root/plugins/$driver" "$root/plugins_registry" "$state"
metrics=127.0.0.1:$(free_port)
echo "$metrics" >"$dir/plugin.metrics"
host_run_in_cgroup "tether-node-$name" "$dir/plugin.pid" "$dir/plugin.log" \
	"$tether_csi" --endpoint "unix://$root/plugins/$driver/csi.sock" --node-id "$name" \
	--state-dir "$state" --store=kubernetes --node-plugin \
	--kubeconfig "$TETHER_K8S_NODE_KUBECONFIG" --metrics-address "$metrics" \
	--kubelet-registration-dir "$root/plugins_registry" \
	--kubelet-registration-path "$root/plugins/$driver/csi.sock" "$@"
for _ in $(seq 1 300); do
	[[ -S $root/plugins_registry/$driver-reg.sock ]] && exit 0
	alive "$dir/plugin.pid" || { tail -n 30 "$dir/plugin.log" >&2; exit 1; }
	sleep 0.1
done
echo "plugin.sh: no registration socket after 30 s" >&2
tail -n 30 "$dir/plugin.log" >&2
exit 1
