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
# shellcheck source-path=SCRIPTDIR source=host.sh
source "$here/host.sh"
name=${TETHER_NODE_NAME:-tether-n1}
dir=$(mktemp -d "${TMPDIR:-/tmp}/tether-node.XXXXXX")
ns=node-smoke

fail() { echo "smoke: FAIL: $*" >&2; exit 1; }

# api METHOD PATH [BODY]: the admin's request, the response body on stdout; fails on >= 400.
api() {
	curl -sS --fail-with-body --cacert "$TETHER_K8S_CA" -H "Authorization: Bearer $TETHER_K8S_ADMIN_TOKEN" \
		-H 'Content-Type: application/json' -X "$1" "$TETHER_K8S_SERVER$2" ${3:+--data "$3"}
}

# field PATH EXPR: a Python expression over the object `o` at PATH, or "" when it is not there.
field() {
	api GET "$1" 2>/dev/null | python3 -c "import json,sys; o=json.load(sys.stdin); print($2)" 2>/dev/null || true
}

# wait_for WHAT SECONDS COMMAND...: until COMMAND prints "yes", or fail after SECONDS.
wait_for() {
	local what=$1 deadline=$((SECONDS + $2))
	shift 2
	until [[ $("$@") == yes ]]; do
		((SECONDS < deadline)) || fail "no $what within the deadline"
		sleep 1
	done
	echo "smoke: $what" >&2
}

node_ready() {
	field "/api/v1/nodes/$name" \
		"'yes' if any(c['type']=='Ready' and c['status']=='True' for c in o['status']['conditions']) else 'no'"
}
pod_phase_is() { [[ $(field "/api/v1/namespaces/$ns/pods/$1" "o['status'].get('phase','')") == "$2" ]] && echo yes || echo no; }

pod() { # NAME IMAGE RESTART COMMAND-JSON
	cat <<EOF
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"$1"},"spec":{"nodeName":"$name",
 "automountServiceAccountToken":false,"restartPolicy":"$3","terminationGracePeriodSeconds":1,
 "containers":[{"name":"c","image":"$2","imagePullPolicy":"Never"$4}]}}
EOF
}

snapshot() { # the host state a node may change, to compare before and after
	sysctl vm.overcommit_memory kernel.panic kernel.panic_on_oops
	for p in /var/lib/kubelet /var/log/containers /var/log/pods /var/lib/cni; do
		[[ -e $p ]] && echo "exists $p" || echo "absent $p"
	done
	ip -o link show | awk -F': ' '{print "link " $2}' | sed 's/@.*//' | sort
	ls /run/netns 2>/dev/null | sed 's/^/netns /'
	ls /run/containerd/s 2>/dev/null | sed 's/^/shim socket /'
	find /sys/fs/cgroup -maxdepth 2 -name "tether-node-$name" | sed 's/^/cgroup /'
}

cleanup() {
	local status=$?
	"$here/node.sh" stop "$dir" "$name" || status=1
	rm -rf "$dir"
	exit $status
}

before=$(snapshot)
trap cleanup EXIT
trap 'exit 130' INT TERM
"$here/node.sh" start "$dir" "$name"
wait_for "node $name Ready" 180 node_ready
echo "smoke: while the node runs: $(sysctl vm.overcommit_memory kernel.panic kernel.panic_on_oops | tr '\n' ' ')" >&2

api POST /api/v1/namespaces "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$ns\"}}" >/dev/null
# No kube-controller-manager here to create it, and Pod admission requires it.
api POST "/api/v1/namespaces/$ns/serviceaccounts" '{"metadata":{"name":"default"}}' >/dev/null
api POST "/api/v1/namespaces/$ns/pods" "$(pod pause registry.k8s.io/pause:3.10 Always '')" >/dev/null
api POST "/api/v1/namespaces/$ns/pods" \
	"$(pod hello registry.k8s.io/e2e-test-images/busybox:1.36.1-1 Never ',"command":["sh","-c","test -x /bin/ls && echo hello"]')" >/dev/null
wait_for "pod pause Running" 180 pod_phase_is pause Running
wait_for "pod hello Succeeded" 180 pod_phase_is hello Succeeded
# tether-csi registers itself with this kubelet, which then asks it NodeGetInfo and lists it in
# the node's CSINode with the node id it answered.
TETHER_CSI=${TETHER_CSI:-} "$here/plugin.sh" start "$dir" "$name"
csinode_lists_tether() {
	field "/apis/storage.k8s.io/v1/csinodes/$name" \
		"'yes' if any(d['name']=='tether.csi.dev' and d['nodeID']=='$name' for d in o['spec'].get('drivers') or []) else 'no'"
}
wait_for "CSINode $name listing tether.csi.dev" 180 csinode_lists_tether
curl -sf "http://$(cat "$dir/plugin.metrics")/metrics" | grep -qx 'rds_csi_kubelet_registered 1' ||
	fail "tether-csi does not say the kubelet registered it"
pod_ip=$(field "/api/v1/namespaces/$ns/pods/pause" "o['status'].get('podIP','')")
[[ -n $pod_ip ]] || fail "the pause pod has no IP"
echo "smoke: pause pod IP $pod_ip" >&2

# Stop with the pods still running: the worst case for leftovers.
trap - EXIT
"$here/node.sh" stop "$dir" "$name"
after=$(snapshot)
left=
[[ $before == "$after" ]] || left+=$'\n'"host state differs:"$'\n'"$(diff <(echo "$before") <(echo "$after") || true)"
pids=$(host_cgroup_pids "tether-node-$name")
[[ -z $pids ]] || left+=$'\n'"processes: $pids"
mounts=$(host_mounts_under "$dir")
[[ -z $mounts ]] || left+=$'\n'"mounts: $mounts"
# Any process still naming the node's folder (kubelet, containerd, a shim's -address).
for p in /proc/[0-9]*; do
	# 2> first: a process may be gone by the time its cmdline is read.
	if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF "$dir/"; then
		left+=$'\n'"process ${p#/proc/}: $(tr '\0' ' ' 2>/dev/null <"$p/cmdline")"
	fi
done
rm -rf "$dir"
[[ -z $left ]] || fail "left behind after stop:$left"
echo "smoke: PASS (node Ready, pause Running, busybox Succeeded, tether-csi registered, nothing left after stop)" >&2
