#!/usr/bin/env bash
# The real API server tier: builds etcd and kube-apiserver (cached), starts them in a temporary
# directory, runs each argument as a shell command with the cluster's environment (see cluster.sh;
# plus TETHER_K8S_DEPLOY_DIR and KUBECONFIG = the admin's), and stops both whatever happens.
# With no argument it runs the API tests of deploy/ and RBAC (tests/k8s/apitest). With --stack first,
# the rest of the control plane runs too (stack.sh: kube-controller-manager, two tether-csi
# replicas and their sidecars; its environment added), and stops before the API server.
#
#   tests/k8s/run.sh                                  # the apitest suite
#   tests/k8s/run.sh 'cargo test -p tether-driver --test k8s'   # any command, in the repo root
#   tests/k8s/run.sh --stack 'cargo test -p tether-driver --test k8s_tier -- --ignored'
#   TETHER_K8S_KEEP=1 tests/k8s/run.sh                # keep the logs and kubeconfigs afterwards
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

stack=
if [[ ${1:-} == --stack ]]; then
	stack=1
	shift
fi
bin=$("$here/build.sh")
dir=$(mktemp -d "${TMPDIR:-/tmp}/tether-k8s.XXXXXX")
child=
cleanup() {
	local status=$?
	[[ -z $child ]] || kill -TERM -- "-$child" 2>/dev/null || true
	# A failure is read from the components' logs: their tails, before they are removed.
	if ((status != 0)); then
		for log in "$dir"/*.log "$dir"/stack/*.log; do
			if [[ -s $log ]]; then
				echo "==> $log <==" >&2
				tail -n 25 "$log" >&2
			fi
		done
	fi
	"$here/stack.sh" stop "$dir" || true
	"$here/cluster.sh" stop "$dir" || true
	if [[ -n ${TETHER_K8S_KEEP:-} ]]; then
		echo "k8s: logs and state kept in $dir" >&2
	else
		rm -rf "$dir"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A failed start exits non-zero, and cleanup shows the logs before removing them.
TETHER_K8S_BIN=$bin "$here/cluster.sh" start "$dir"
# shellcheck source=/dev/null
source "$dir/env"
export TETHER_K8S_DEPLOY_DIR=$repo/deploy KUBECONFIG=$TETHER_K8S_ADMIN_KUBECONFIG
if [[ -n $stack ]]; then
	"$here/stack.sh" start "$dir"
	# shellcheck source=/dev/null
	source "$dir/stack.env"
fi

if [[ $# -eq 0 ]]; then
	set -- "cd '$here/apitest' && go test -count=1 ./..."
fi
cd "$repo"
# Each command runs in the background, in its own process group (set -m) that cleanup can end
# whole, and is waited for, so that a signal reaches the traps at once (bash defers them while a
# foreground child runs).
set -m
for command in "$@"; do
	echo "k8s: running: $command" >&2
	bash -c "$command" &
	child=$!
	wait "$child"
	child=
done
