# Where build.sh puts each binary of the tier, sourced by build.sh and run.sh (one place for it).
# Each folder is keyed by the versions in versions.env, so a new pin builds anew and an old
# build is never mistaken for it.
# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this
# shellcheck source-path=SCRIPTDIR source=versions.env
source "$(dirname "${BASH_SOURCE[0]}")/versions.env"
k8s_cache=${TETHER_K8S_CACHE:-$HOME/.cache/tether-k8s}
# etcd, kube-apiserver, kube-controller-manager and the node tier's kubelet, kube-scheduler,
# e2e.test, agnhost and ginkgo: one module, one folder.
k8s_root="$k8s_cache/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"
k8s_bin="$k8s_root/bin"
attacher_bin="$k8s_cache/csi-attacher-$ATTACHER_VERSION/csi-attacher"
provisioner_bin="$k8s_cache/csi-provisioner-$PROVISIONER_VERSION/csi-provisioner"
