#!/usr/bin/env bash
# The rest of the control plane on top of cluster.sh's API server, as processes on 127.0.0.1:
# kube-controller-manager (only the controllers the scenarios need), two tether-csi controller
# replicas under leader election sharing one state directory, and beside each replica the
# external-attacher and external-provisioner on its socket. The driver and the sidecars run with
# the arguments deploy/30-controller.yaml gives their containers (paths and addresses made local,
# the store embedded) and with a real token of the controller's ServiceAccount, after deploy/ is
# applied, so the manifests' RBAC is what authorizes them.
#
#   stack.sh start DIR   DIR is a running cluster.sh cluster; waits until a replica leads and its
#                        sidecars hold their Leases; writes DIR/stack.env (sourceable, see below)
#   stack.sh stop DIR    stops every process it started (idempotent)
#
# DIR/stack.env exports TETHER_TIER_REPLICAS (space-separated NAME=METRICS_ADDRESS of the two
# replicas; NAME is the replica's Lease identity), TETHER_TIER_DRIVER (the CSI driver name),
# TETHER_TIER_GRACE_SECONDS, TETHER_TIER_DIR, TETHER_TIER_UPSTREAM, TETHER_TIER_STORE and
# TETHER_TIER_STATE_DIR (the replicas' shared --state-dir). tether-csi is $TETHER_CSI, else built
# by cargo.
#
# TETHER_TIER_STORE=kubernetes: the replicas keep the cluster store (TetherVolumes, the TetherTerm),
# as deploy/ runs them, for Tether's own volumes too (not only in proxy mode); --state-dir then
# holds only the volumes' data (data/), which node plugins on this one machine may share by using
# TETHER_TIER_STATE_DIR as their own --state-dir. A real cluster needs a data plane every node
# reaches instead (proxy mode, in front of a real driver). Default: the embedded store, which the
# control-plane tier's scenarios read from the shared state directory.
# TETHER_TIER_EXTRA_CONTROLLERS: more of kube-controller-manager's controllers, comma-separated,
# added to the list below (a tier with real kubelets wants node lifecycle, pod GC, ...).
#
# Proxy mode: with TETHER_TIER_UPSTREAM set to the e2e mock CSI driver (tests/proxy/build-mock.sh),
# each replica serves in front of a mock of its own (`--upstream`, as deploy/proxy/ runs it), named
# like the driver and with attach disabled, so the volumes are the mock's and Tether arbitrates
# every attachment itself.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR source=paths.sh
source "$here/paths.sh"

DRIVER=tether.csi.dev
NAMESPACE=tether
SA=tether-csi-controller
# Short, so scenario 7 (a node deleted while holding a volume) is over in seconds.
GRACE=${TETHER_TIER_GRACE_SECONDS:-10}
READY_TIMEOUT=${TETHER_K8S_READY_TIMEOUT:-240}
# What the scenarios need of kube-controller-manager: Pods' volumes attached and detached through
# VolumeAttachments, claims bound, and the protection finalizers removed. Not the node lifecycle
# controller (it would taint and evict the Pods of nodes with no kubelet) nor pod GC (the tests
# delete Pods themselves, when a scenario says so).
CONTROLLERS=persistentvolume-attach-detach-controller,persistentvolume-binder-controller,persistentvolume-protection-controller,persistentvolumeclaim-protection-controller${TETHER_TIER_EXTRA_CONTROLLERS:+,$TETHER_TIER_EXTRA_CONTROLLERS}
REPLICAS=(tether-csi-controller-0 tether-csi-controller-1)
export RESTART_DELAY=${TETHER_TIER_RESTART_DELAY:-10}
UPSTREAM=${TETHER_TIER_UPSTREAM:-}
STORE=${TETHER_TIER_STORE:-}
[[ -z $STORE || $STORE == kubernetes || $STORE == embedded ]] ||
	{ echo "k8s stack: TETHER_TIER_STORE must be kubernetes or embedded, not $STORE" >&2; exit 1; }

log() { echo "k8s stack: $*" >&2; }
die() { log "$*"; exit 1; }

# spawn DIR NAME ENV... -- COMMAND...: runs COMMAND in its own session, logs in DIR/stack/NAME.log.
spawn() {
	local dir=$1 name=$2 envs=()
	shift 2
	while [[ $1 != -- ]]; do envs+=("$1"); shift; done
	shift
	env "${envs[@]}" setsid "$@" >>"$dir/stack/$name.log" 2>&1 </dev/null &
	echo $! >"$dir/stack/$name.pid"
}

# restarting DIR NAME ENV... -- COMMAND...: like spawn, but COMMAND starts again RESTART_DELAY
# seconds after it exits, as the kubelet restarts a container (10 s is its first back-off; it
# doubles up to 5 minutes there, not here): a sidecar that exits is back for when its replica
# leads; a driver stopped or
# killed by a test comes back as a standby. DIR/stack/NAME.pid is the supervising shell's (stop
# it to stop both), DIR/stack/NAME.child.pid the current COMMAND's (signal it to kill the
# "container").
restarting() {
	local dir=$1 name=$2 envs=()
	shift 2
	while [[ $1 != -- ]]; do envs+=("$1"); shift; done
	shift
	# shellcheck disable=SC2016 # expanded by the supervising shell
	spawn "$dir" "$name" "${envs[@]}" -- bash -c 'trap "kill -TERM \$child \$pause 2>/dev/null; wait \$child; exit 0" TERM
		while :; do
			"$@" & child=$!
			echo "$child" >"$0"
			wait "$child"
			echo "k8s stack: exited with $?, restarting in ${RESTART_DELAY}s"
			# In the background, so that the TERM trap runs at once.
			sleep "$RESTART_DELAY" & pause=$!
			wait "$pause"
		done' "$dir/stack/$name.child.pid" "$@"
}

# The args of a container of the controller Deployment, one per array element, made local.
deployment_args() {
	local dir=$1 container=$2
	shift 2
	mapfile -t args < <("$dir/stack/tier" args "$TETHER_K8S_DEPLOY_DIR" tether-csi-controller "$container" "$@")
	((${#args[@]} > 0)) || die "no args for $container in $TETHER_K8S_DEPLOY_DIR"
}

admin_get() {
	curl -sf --max-time 5 --cacert "$TETHER_K8S_CA" -H "Authorization: Bearer $TETHER_K8S_ADMIN_TOKEN" \
		"$TETHER_K8S_SERVER$1"
}

# The holder of Lease NAME in the driver's namespace, or nothing.
lease_holder() {
	admin_get "/apis/coordination.k8s.io/v1/namespaces/$NAMESPACE/leases/$1" 2>/dev/null |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["spec"].get("holderIdentity", ""))' 2>/dev/null || true
}

# wait_for DIR WHAT COMMAND...: polls COMMAND until it succeeds; any process of the stack exiting
# or the deadline failing the start, with the logs' tails.
wait_for() {
	local dir=$1 what=$2 deadline=$((SECONDS + READY_TIMEOUT)) pid
	shift 2
	until "$@"; do
		for pid in "$dir"/stack/*.pid; do
			[[ $pid != *.child.pid ]] || continue
			alive "$pid" || { tail -n 30 "${pid%.pid}.log" >&2; die "$(basename "${pid%.pid}") exited"; }
		done
		((SECONDS < deadline)) || { tail -n 20 "$dir"/stack/*.log >&2; die "no $what after ${READY_TIMEOUT}s"; }
		sleep 0.5
	done
}

# The store the replicas keep: what TETHER_TIER_STORE and proxy mode made of deploy/'s.
store_kind() {
	if [[ -n $UPSTREAM || $STORE == kubernetes ]]; then echo kubernetes; else echo embedded; fi
}

healthy() { curl -skf --max-time 2 "https://127.0.0.1:$1/healthz" >/dev/null; }
leading() {
	local r
	for r in "$@"; do curl -sf --max-time 2 "http://$r/readyz" >/dev/null && return 0; done
	return 1
}
held() { [[ -n $(lease_holder "$1") ]]; }

start_kcm() {
	local dir=$1 port
	port=$(free_port)
	spawn "$dir" kube-controller-manager -- "$k8s_bin/kube-controller-manager" \
		--kubeconfig="$TETHER_K8S_ADMIN_KUBECONFIG" --authentication-kubeconfig="$TETHER_K8S_ADMIN_KUBECONFIG" \
		--authorization-kubeconfig="$TETHER_K8S_ADMIN_KUBECONFIG" --bind-address=127.0.0.1 --secure-port="$port" \
		--cert-dir="$dir/stack/kcm-certs" --controllers="$CONTROLLERS" --leader-elect=false \
		--use-service-account-credentials=false --profiling=false --v="${TETHER_TIER_KCM_VERBOSITY:-2}"
	wait_for "$dir" "kube-controller-manager /healthz" healthy "$port"
}

# start_replica DIR INDEX: tether-csi and its two sidecars on the replica's own socket.
start_replica() {
	local dir=$1 name=${REPLICAS[$2]} rdir metrics kubeconfig
	rdir=$dir/stack/$name metrics=127.0.0.1:$(free_port) kubeconfig=$dir/stack/controller.kubeconfig
	mkdir -p "$rdir"
	# The tier keeps the embedded store (--store=kubernetes made --store=embedded): its scenarios
	# read the term and the applied fences from the shared state directory (k8s_tier.rs,
	# state_epochs), not from TetherVolumes.
	# In proxy mode the cluster store stays, as deploy/proxy/ runs it (no failover scenario runs
	# there), and so it does when TETHER_TIER_STORE=kubernetes asks for it.
	local store
	store="kubernetes=$(store_kind)"
	# shellcheck disable=SC2016 # the Deployment's literal $(NODE_NAME), replaced
	deployment_args "$dir" tether-csi "unix:///csi/csi.sock=unix://$rdir/csi.sock" \
		"/var/lib/tether=$dir/stack/state" "0.0.0.0:9809=$metrics" '$(NODE_NAME)=tier-controller' \
		"$store"
	if [[ -n $UPSTREAM ]]; then
		spawn "$dir" "$name-upstream" -- "$UPSTREAM" -endpoint "$rdir/upstream.sock" -name "$DRIVER" -disable-attach
		wait_for "$dir" "$name's upstream socket" test -S "$rdir/upstream.sock"
		args+=(--upstream="unix://$rdir/upstream.sock")
	fi
	restarting "$dir" "$name" POD_NAME="$name" POD_NAMESPACE=$NAMESPACE -- "$tether_csi" "${args[@]}" \
		--kubeconfig="$kubeconfig" --grace-period-seconds="$GRACE"
	local sidecar bin
	for sidecar in csi-attacher csi-provisioner; do
		bin=$attacher_bin
		[[ $sidecar == csi-attacher ]] || bin=$provisioner_bin
		deployment_args "$dir" "$sidecar" "/csi/csi.sock=$rdir/csi.sock" "\$(POD_NAMESPACE)=$NAMESPACE"
		restarting "$dir" "$name-$sidecar" POD_NAMESPACE=$NAMESPACE -- "${as_pod[@]}" "$name" \
			"$bin" "${args[@]}" --kubeconfig="$kubeconfig"
	done
	echo "$name=$metrics" >>"$dir/stack/replicas"
}

# The sidecars' leader-election identity is the hostname, which in a cluster is the pod's name;
# here both replicas share one, and two sidecars of one identity could both lead. So each runs
# in a UTS namespace of its own named after its replica (unshare, as root), where that works.
# Used as "${as_pod[@]}" NAME COMMAND...
# shellcheck disable=SC2016 # expanded by the inner shell
as_pod=(unshare --uts -- bash -c 'hostname "$0" && exec "$@"')
unshare --uts -- true 2>/dev/null || as_pod=(bash -c 'exec "$@"')

cmd_start() {
	local dir=$1 started=$SECONDS
	# shellcheck source=/dev/null
	source "$dir/env"
	export TETHER_K8S_DEPLOY_DIR=${TETHER_K8S_DEPLOY_DIR:-$repo/deploy}
	[[ -x $k8s_bin/kube-controller-manager && -x $attacher_bin && -x $provisioner_bin ]] ||
		die "kube-controller-manager or a sidecar is missing: run tests/k8s/build.sh"
	tether_csi=${TETHER_CSI:-}
	if [[ -z $tether_csi ]]; then
		(cd "$repo" && cargo build -q -p tether-driver --locked --bin tether-csi)
		tether_csi=${CARGO_TARGET_DIR:-$repo/target}/debug/tether-csi
	fi
	mkdir -p "$dir/stack/state"
	rm -f "$dir/stack/replicas"
	(cd "$here/apitest" && go build -o "$dir/stack/tier" ./cmd/tier)
	"$dir/stack/tier" apply "$TETHER_K8S_DEPLOY_DIR"
	"$dir/stack/tier" kubeconfig $NAMESPACE $SA "$dir/stack/controller.kubeconfig"
	start_kcm "$dir"
	start_replica "$dir" 0
	start_replica "$dir" 1
	local metrics=()
	mapfile -t metrics < <(cut -d= -f2 "$dir/stack/replicas")
	wait_for "$dir" "leading tether-csi replica" leading "${metrics[@]}"
	# The leader's sidecars take their own Leases once they reach its socket.
	wait_for "$dir" "external-attacher Lease" held "external-attacher-leader-${DRIVER//./-}"
	wait_for "$dir" "external-provisioner Lease" held "${DRIVER//./-}"
	{
		echo "export TETHER_TIER_REPLICAS='$(tr '\n' ' ' <"$dir/stack/replicas" | sed 's/ $//')'"
		echo "export TETHER_TIER_DRIVER=$DRIVER"
		echo "export TETHER_TIER_GRACE_SECONDS=$GRACE"
		echo "export TETHER_TIER_DIR=$dir/stack"
		echo "export TETHER_TIER_UPSTREAM='$UPSTREAM'"
		echo "export TETHER_TIER_STORE=$(store_kind)"
		echo "export TETHER_TIER_STATE_DIR=$dir/stack/state"
	} >"$dir/stack.env"
	log "kube-controller-manager, ${#REPLICAS[@]} tether-csi replicas and their sidecars up in $((SECONDS - started)) s"
}

# Sidecars first (they would log lost connections), then the drivers, then the controller manager;
# the processes of each step in parallel.
cmd_stop() {
	local dir=$1 name
	[[ -d $dir/stack ]] || return 0
	for name in "${REPLICAS[@]}"; do
		stop_one "$dir/stack/$name-csi-attacher.pid" &
		stop_one "$dir/stack/$name-csi-provisioner.pid" &
	done
	wait
	for name in "${REPLICAS[@]}"; do stop_one "$dir/stack/$name.pid" & done
	wait
	for name in "${REPLICAS[@]}"; do stop_one "$dir/stack/$name-upstream.pid" & done
	wait
	stop_one "$dir/stack/kube-controller-manager.pid"
}

[[ $# -eq 2 ]] || die "usage: $0 start|stop DIR"
case $1 in
start) cmd_start "$2" ;;
stop) cmd_stop "$2" ;;
*) die "unknown command $1" ;;
esac
