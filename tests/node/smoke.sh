#!/usr/bin/env bash
# The node tier's first proof, run inside tests/k8s/run.sh (its cluster environment): one node
# (node.sh) turns Ready, a pause Pod on it runs and a busybox Pod on it completes, tether-csi
# registers itself as its node plugin (plugin.sh: the kubelet lists it in the CSINode), and after
# `node.sh stop` nothing of the node is left on the host: no process, mount, cgroup, link or
# folder it made, and the sysctls kubelet changes are back to their values before.
#
#   tests/k8s/run.sh tests/node/smoke.sh
#
# Not part of `make test`. Waits are bounded by generous deadlines and never measured.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=probe.sh
source "$here/probe.sh"
name=${TETHER_NODE_NAME:-tether-n1}
dir=$(mktemp -d "${TMPDIR:-/tmp}/tether-node.XXXXXX")
ns=node-smoke tag=smoke

node_up
echo "smoke: while the node runs: $(sysctl vm.overcommit_memory kernel.panic kernel.panic_on_oops | tr '\n' ' ')" >&2

namespace "$ns"
api POST "/api/v1/namespaces/$ns/pods" "$(pod pause registry.k8s.io/pause:3.10 Always '')" >/dev/null
api POST "/api/v1/namespaces/$ns/pods" \
	"$(pod hello registry.k8s.io/e2e-test-images/busybox:1.36.1-1 Never ',"command":["sh","-c","test -x /bin/ls && echo hello"]')" >/dev/null
wait_for "pod pause Running" 180 pod_phase_is pause Running
wait_for "pod hello Succeeded" 180 pod_phase_is hello Succeeded
plugin_up
pod_ip=$(field "/api/v1/namespaces/$ns/pods/pause" "o['status'].get('podIP','')")
[[ -n $pod_ip ]] || fail "the pause pod has no IP"
echo "smoke: pause pod IP $pod_ip" >&2

# Stop with the pods still running: the worst case for leftovers.
node_down_clean
echo "smoke: PASS (node Ready, pause Running, busybox Succeeded, tether-csi registered, nothing left after stop)" >&2
