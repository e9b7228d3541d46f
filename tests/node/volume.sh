#!/usr/bin/env bash
# Step 4 of the node tier's groundwork, a prototype: a Pod with a Tether claim on a real kubelet.
# Runs inside `tests/k8s/run.sh --stack` in proxy mode, the only mode of stack.sh whose replicas
# keep the cluster store (TetherVolumes), which a --node-plugin reads:
#
#   TETHER_TIER_UPSTREAM=$(tests/proxy/build-mock.sh) tests/k8s/run.sh --stack tests/node/volume.sh
#
# One node (node.sh) with tether-csi as its node plugin (plugin.sh, --store=kubernetes
# --node-plugin, registered by itself), forwarding to the leading replica's mock driver: the e2e
# mock keeps its volumes in memory, so only the instance that created a volume can stage it. A
# claim of the `tether` StorageClass, annotated with the node as the scheduler would (no
# kube-scheduler here), and a busybox Pod on the node that writes and reads a file in it. Passes
# when the Pod succeeds; then the node stops and must leave nothing behind.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=probe.sh
source "$here/probe.sh"
# The e2e mock answers NodeGetInfo with its -name as the node id, and proxy mode forwards
# NodeGetInfo unchanged: the stack's mocks are named after the driver, so the node must be too,
# or the CSINode's id (and every ControllerPublish) would name a node that does not exist.
name=tether.csi.dev
dir=$(mktemp -d "${TMPDIR:-/tmp}/tether-node.XXXXXX")
ns=node-volume tag=volume

[[ -n ${TETHER_TIER_UPSTREAM:-} && -n ${TETHER_TIER_REPLICAS:-} ]] ||
	fail "run inside TETHER_TIER_UPSTREAM=... tests/k8s/run.sh --stack (proxy mode)"

leader_upstream() {
	local r
	for r in $TETHER_TIER_REPLICAS; do
		if curl -sf --max-time 2 "http://${r#*=}/readyz" >/dev/null; then
			echo "$TETHER_TIER_DIR/${r%%=*}/upstream.sock"
			return
		fi
	done
}

node_up
upstream=$(leader_upstream)
[[ -S $upstream ]] || fail "no leading replica's upstream socket"
plugin_up --upstream "unix://$upstream"

namespace "$ns"
api POST "/api/v1/namespaces/$ns/persistentvolumeclaims" "$(cat <<EOF
{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data",
 "annotations":{"volume.kubernetes.io/selected-node":"$name"}},
 "spec":{"storageClassName":"tether","accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Mi"}}}}
EOF
)" >/dev/null
api POST "/api/v1/namespaces/$ns/pods" "$(cat <<EOF
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"writer"},"spec":{"nodeName":"$name",
 "automountServiceAccountToken":false,"restartPolicy":"Never","terminationGracePeriodSeconds":1,
 "volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"data"}}],
 "containers":[{"name":"c","image":"registry.k8s.io/e2e-test-images/busybox:1.36.1-1",
  "imagePullPolicy":"Never","command":["sh","-c","echo tether >/data/f && grep -qx tether /data/f"],
  "volumeMounts":[{"name":"data","mountPath":"/data"}]}]}}
EOF
)" >/dev/null
claim_bound() { [[ $(field "/api/v1/namespaces/$ns/persistentvolumeclaims/data" "o['status'].get('phase','')") == Bound ]] && echo yes || echo no; }
wait_for "claim data Bound" 180 claim_bound
wait_for "pod writer Succeeded" 240 pod_phase_is writer Succeeded
# The kubelet's own word that the volume went through the CSI node calls, which only tether-csi
# serves for this driver: MountDevice is NodeStageVolume, SetUp is NodePublishVolume.
for step in MountDevice SetUp; do
	line=$(grep -aE "MountVolume\.$step succeeded for volume [\\]?\"pvc-" "$dir/kubelet.log" | head -n 1)
	[[ -n $line ]] || fail "kubelet did not log MountVolume.$step of the claim's volume"
	echo "volume: kubelet: ${line:0:220}" >&2
done
node_down_clean
echo "volume: PASS (claim bound, the Pod on the real kubelet wrote and read its Tether volume, nothing left after stop)" >&2
