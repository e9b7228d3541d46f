#!/usr/bin/env bash
# The Kubernetes external-storage e2e suite (e2e.test of K8S_VERSION) against tether-csi on real
# kubelets: the control plane of tests/k8s/run.sh --stack on the cluster store, kube-scheduler,
# the nodes of tier.sh (node.sh, each with tether-csi as its node plugin), then e2e.test under the
# ginkgo CLI with the driver definition e2e/tether.yaml and the focus of one of two sets:
#
#   tests/node/e2e.sh focused   # the patterns make test runs (a few minutes)
#   tests/node/e2e.sh full      # every spec the driver definition makes applicable (make test-e2e)
#
# Needs root, containerd, ctr and runc on PATH. Runs under flock /tmp/tether-kubelet-dev.lock
# (other runs on this machine start kubelets too). TETHER_NODE_NAMES (default "e2e-a e2e-b") the
# nodes, TETHER_E2E_PROCS (default 2) parallel ginkgo processes, TETHER_E2E_REPORT a folder for the
# JUnit report and the log (kept; default: a temporary one, removed). Extra arguments go to
# e2e.test (e.g. -ginkgo.focus=... to narrow a set further).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

# The sets, as ginkgo focus and skip regular expressions over the specs' full names. Skipped in
# both: [Disruptive] specs (they restart kubelets the way a provider's nodes are restarted: over
# SSH), Windows ones, and the specs that look into the kubelet's root folder on the host (one
# path for every node, -kubelet-root-dir, while the nodes here are kubelets of one machine, each
# with its own), and the one that deploys a volume populator (its images come from a registry,
# which this machine cannot reach, through Deployment and StatefulSet controllers the stack does
# not run); in the focused set also [Serial] ones (ginkgo runs them one at a time, after the
# parallel ones).
SKIP='\[Disruptive\]|\[Feature:Windows\]|should not mount / map unused volumes in a pod|should provision storage with any volume data source'
FOCUSED='External.Storage.*\[Testpattern: Dynamic PV \((default fs|block volmode|filesystem volmode)\)\] (volumes|volumeIO|volumeMode|multiVolume|provisioning) '
FULL='External.Storage'

if [[ ${1:-} != --inside ]]; then
	set_name=${1:-}
	case $set_name in
	focused) focus=$FOCUSED skip="$SKIP|\[Serial\]" ;;
	full) focus=$FULL skip=$SKIP ;;
	*) echo "usage: e2e.sh focused|full [E2E.TEST ARG...]" >&2; exit 2 ;;
	esac
	shift
	# What the suite needs of kube-controller-manager beyond the stack's volume controllers (added to them): the
	# node lifecycle controller (it lifts the not-ready taint kubelet registers its Node with; the
	# suite waits for every node to be schedulable), ServiceAccounts and the root CA ConfigMap in
	# its namespaces (Pods' token volumes), the namespaces' deletion, owner references (generic
	# ephemeral volumes' claims) and those claims.
	export TETHER_TIER_STORE=kubernetes
	export TETHER_TIER_EXTRA_CONTROLLERS=node-lifecycle-controller,serviceaccount-controller,root-ca-certificate-publisher-controller,namespace-controller,garbage-collector-controller,ephemeral-volume-controller
	"$repo/tests/k8s/build.sh" >/dev/null
	# For the figure printed inside: how long the lock and the control plane's start took.
	export TETHER_E2E_T0=$EPOCHSECONDS
	exec flock /tmp/tether-kubelet-dev.lock "$repo/tests/k8s/run.sh" --stack \
		"$(printf '%q ' "$here/e2e.sh" --inside "$focus" "$skip" "$@")"
fi

# Inside run.sh --stack: its environment (cluster.sh's env, stack.env) is set.
shift
focus=$1 skip=$2
shift 2
# shellcheck source-path=SCRIPTDIR source=inputs.sh
source "$here/inputs.sh"
# shellcheck source-path=SCRIPTDIR source=../k8s/lib.sh
source "$here/../k8s/lib.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/tether-e2e.XXXXXX")
report=${TETHER_E2E_REPORT:-$work/report}
mkdir -p "$report"
cleanup() {
	local status=$? p
	# e2e.test processes outlive an interrupted ginkgo: each names this run's report folder.
	for p in /proc/[0-9]*; do
		if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "-report-dir=$report "; then
			kill -KILL "${p#/proc/}" 2>/dev/null || true
		fi
	done
	stop_one "$work/kube-scheduler.pid"
	((status == 0)) || tail -n 20 "$work/kube-scheduler.log" >&2 || true
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# kube-scheduler, here and not in stack.sh: only Pods on real nodes need one.
port=$(free_port)
setsid "$k8s_bin/kube-scheduler" --kubeconfig="$KUBECONFIG" --authentication-kubeconfig="$KUBECONFIG" \
	--authorization-kubeconfig="$KUBECONFIG" --bind-address=127.0.0.1 --secure-port="$port" \
	--leader-elect=false --v=1 >"$work/kube-scheduler.log" 2>&1 </dev/null &
echo $! >"$work/kube-scheduler.pid"
deadline=$((SECONDS + 120))
until curl -skf --max-time 2 "https://127.0.0.1:$port/healthz" >/dev/null; do
	alive "$work/kube-scheduler.pid" || { echo "e2e: kube-scheduler exited" >&2; exit 1; }
	((SECONDS < deadline)) || { echo "e2e: kube-scheduler not healthy within the deadline" >&2; exit 1; }
	sleep 0.5
done

# The nodes, each with its node plugin on the replicas' data directory, are tier.sh's (it stops
# them and checks the host afterwards); e2e.test runs as its command. ginkgo runs the specs in
# parallel processes and writes the JUnit report.
e2e=("$k8s_bin/ginkgo" --procs="${TETHER_E2E_PROCS:-2}" --timeout=2h --output-dir="$report"
	--junit-report=junit.xml --no-color --focus="$focus" --skip="$skip" "$k8s_bin/e2e.test" --
	-kubeconfig="$KUBECONFIG" -provider=skeleton -storage.testdriver="$here/e2e/tether.yaml"
	-report-dir="$report" "$@")
echo "e2e: focus '$focus', skip '$skip', report in $report;" \
	"$((EPOCHSECONDS - TETHER_E2E_T0)) s since e2e.sh queued for the lock (the wait, then the control plane)" >&2
TETHER_NODE_NAMES=${TETHER_NODE_NAMES:-e2e-a e2e-b} "$here/tier.sh" \
	"set -o pipefail; $(printf '%q ' "${e2e[@]}") 2>&1 | tee $(printf '%q' "$report/e2e.log") >&2"
