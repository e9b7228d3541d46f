# What the node tier's proofs share (sourced by smoke.sh and volume.sh, inside tests/k8s/run.sh):
# the admin's API requests, bounded waits, the Pods they create, and the check that a stopped node
# left nothing on the host. The caller sets `name` (the node), `dir` (its folder), `ns` and `tag`
# (the prefix of its messages).
# shellcheck shell=bash disable=SC2154 # name, dir, ns and tag are the caller's
probe_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=host.sh
source "$probe_here/host.sh"

fail() { echo "$tag: FAIL: $*" >&2; exit 1; }

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
	echo "$tag: $what" >&2
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
	find /sys/fs/cgroup -maxdepth 2 -name "tether-node-*" | sed 's/^/cgroup /'
	# The host-level record of node.sh's nodes (host.sh); absent is the usual answer.
	ls -d "$host_shared" "$host_shared.lock" 2>/dev/null | sed 's/^/host record /' || true
}

# namespace NS: the namespace and its default ServiceAccount (no kube-controller-manager creates
# it without --stack, and Pod admission requires it).
namespace() {
	api POST /api/v1/namespaces "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$1\"}}" >/dev/null
	api POST "/api/v1/namespaces/$1/serviceaccounts" '{"metadata":{"name":"default"}}' >/dev/null 2>&1 || true
}

# leftovers BEFORE: what the stopped node left, compared with the snapshot BEFORE; empty if nothing.
leftovers() {
	host_differs "$1"
	node_leftovers
}

# host_differs BEFORE: how the host differs from the snapshot BEFORE; empty if it does not.
host_differs() {
	local after
	after=$(snapshot)
	[[ $1 == "$after" ]] || echo -n $'\n'"host state differs:"$'\n'"$(diff <(echo "$1") <(echo "$after") || true)"
}

# What the stopped node `name` in `dir` left: processes, mounts; empty if nothing.
node_leftovers() {
	local left= pids mounts p
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
	echo -n "$left"
}

# What a failure is read from: the node plugin's log, and kubelet's lines about plugins and volumes.
node_logs() {
	[[ ! -s $dir/plugin.log ]] || { echo "==> plugin.log <==" >&2; tail -n 30 "$dir/plugin.log" >&2; }
	[[ ! -s $dir/kubelet.log ]] || {
		echo "==> kubelet.log (plugins, CSI, volumes) <==" >&2
		grep -aiE 'plugin|csi|volume|attach' "$dir/kubelet.log" | tail -n 30 >&2
	}
}

# node_up: snapshots the host, starts node `name` in `dir` (stopped on any exit from here on),
# waits for its Ready condition.
node_up() {
	before=$(snapshot)
	trap 'status=$?; ((status == 0)) || node_logs; "$probe_here/node.sh" stop "$dir" "$name" || status=1; rm -rf "$dir"; exit $status' EXIT
	trap 'exit 130' INT TERM
	"$probe_here/node.sh" start "$dir" "$name"
	wait_for "node $name Ready" 180 node_ready
}

# plugin_up [ARGS...]: plugin.sh's tether-csi on the node; waits until the kubelet registered it
# (it asks NodeGetInfo and lists the driver in the node's CSINode with the id answered) and
# tether-csi says so.
plugin_up() {
	"$probe_here/plugin.sh" start "$dir" "$name" "$@"
	wait_for "CSINode $name listing tether.csi.dev" 180 csinode_lists_tether
	wait_for "tether-csi saying the kubelet registered it" 60 plugin_says_registered
}
plugin_says_registered() {
	curl -sf "http://$(cat "$dir/plugin.metrics")/metrics" | grep -qx 'rds_csi_kubelet_registered 1' && echo yes || echo no
}
csinode_lists_tether() {
	field "/apis/storage.k8s.io/v1/csinodes/$name" \
		"'yes' if any(d['name']=='tether.csi.dev' and d['nodeID']=='$name' for d in o['spec'].get('drivers') or []) else 'no'"
}

# node_down_clean: stops the node and fails if it left anything on the host.
node_down_clean() {
	trap - EXIT
	"$probe_here/node.sh" stop "$dir" "$name"
	local left
	left=$(leftovers "$before")
	rm -rf "$dir"
	[[ -z $left ]] || fail "left behind after stop:$left"
}
