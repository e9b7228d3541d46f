#!/usr/bin/env bash
# The node tier's nodes (issue 21): three real nodes on this machine, each with tether-csi as its
# self-registering node plugin, around the commands given; then every node stops and nothing of
# them may be left on the host. Runs inside `tests/k8s/run.sh --stack` with the replicas on the
# cluster store (a --node-plugin reads each volume's TetherVolume), under the machine's kubelet lock:
#
#   flock /tmp/tether-kubelet-dev.lock env TETHER_TIER_STORE=kubernetes tests/k8s/run.sh --stack \
#       'tests/node/tier.sh "cargo test -p tether-driver --test node_tier -- --ignored"'
#
# The node plugins take the replicas' --state-dir as theirs (TETHER_TIER_STATE_DIR): the volumes'
# data are folders there, which every "node" reaches only because every node is this machine.
# Each command runs with TETHER_NODES exported: space-separated NAME=DIR of the started nodes
# (DIR/kubelet.pid, DIR/plugin.metrics, DIR/kubelet.log are node.sh's and plugin.sh's files).
# On a failure, TETHER_NODE_LOGS=FOLDER keeps every node's logs there (FOLDER/NAME/*.log).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=probe.sh
source "$here/probe.sh"
tag=node-tier
read -r -a names <<<"${TETHER_NODE_NAMES:-node-a node-b node-c}"
[[ ${TETHER_TIER_STORE:-} == kubernetes && -n ${TETHER_TIER_STATE_DIR:-} ]] ||
	fail "run inside TETHER_TIER_STORE=kubernetes tests/k8s/run.sh --stack"
(($# > 0)) || fail "usage: tier.sh COMMAND..."

# Every node stops (in parallel: the host-level record is locked), then the checks: the host as
# before the first node, and nothing of any node left.
stop_all() {
	local status=$1 n left pids=()
	trap - EXIT
	for n in "${names[@]}"; do
		if ((status != 0)); then
			name=$n dir=$root/$n node_logs
			# Whole, for reading afterwards, where TETHER_NODE_LOGS says.
			if [[ -n ${TETHER_NODE_LOGS:-} ]]; then
				mkdir -p "$TETHER_NODE_LOGS/$n"
				cp "$root/$n"/*.log "$TETHER_NODE_LOGS/$n/" 2>/dev/null || true
			fi
		fi
		"$here/node.sh" stop "$root/$n" "$n" &
		pids+=($!)
	done
	for n in "${pids[@]}"; do wait "$n" || status=1; done
	# The node plugins' loop devices over block volumes' files (NodePublish makes one) of Pods
	# still there when their node stopped: a node's stop ends them as its reboot would.
	host_detach_loops_under "$TETHER_TIER_STATE_DIR" || status=1
	left=$(host_differs "$before")
	for n in "${names[@]}"; do left+=$(name=$n dir=$root/$n node_leftovers); done
	rm -rf "$root"
	[[ -z $left ]] || { echo "$tag: FAIL: left behind after stop:$left" >&2; exit 1; }
	echo "$tag: nodes up, commands run, nodes stopped and nothing left, in $((SECONDS - started)) s (exit $status)" >&2
	exit "$status"
}

started=$SECONDS
before=$(snapshot)
root=$(mktemp -d "${TMPDIR:-/tmp}/tether-nodes.XXXXXX")
trap 'stop_all $?' EXIT
trap 'exit 130' INT TERM
# Built (or found in the cache) once, not by three starts at the same time.
"$here/images.sh" >/dev/null
"$here/cni.sh" >/dev/null
starts=()
for n in "${names[@]}"; do
	"$here/node.sh" start "$root/$n" "$n" &
	starts+=($!)
done
for n in "${starts[@]}"; do wait "$n" || fail "a node did not start"; done
nodes=()
for n in "${names[@]}"; do
	name=$n
	wait_for "node $n Ready" 180 node_ready
	dir=$root/$n
	TETHER_PLUGIN_STATE_DIR=$TETHER_TIER_STATE_DIR plugin_up
	nodes+=("$n=$root/$n")
done
echo "$tag: ${#names[@]} nodes Ready with their plugins registered after $((SECONDS - started)) s" >&2
export TETHER_NODES="${nodes[*]}"
for command in "$@"; do
	echo "$tag: running: $command" >&2
	bash -c "$command"
done
