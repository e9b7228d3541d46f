#!/usr/bin/env bash
# One real Kubernetes node on this machine: a containerd and a kubelet with their own root
# folders, sockets, ports and cgroup root, registered with the cluster that tests/k8s/run.sh
# started (KUBECONFIG, the admin's, from its environment). Every change made outside DIR is
# written to DIR/host-changes before it is made, and `stop` undoes them in reverse order.
#
#   node.sh start DIR NAME    # returns once containerd serves and the images are imported;
#                             # the Node turns Ready shortly after (probe.sh's node_up waits)
#   node.sh stop DIR NAME     # idempotent; kills every process of the node (its pids cgroup),
#                             # unmounts everything under DIR, undoes DIR/host-changes
#
# Needs root, the cluster's KUBECONFIG, kubelet in the tier's cache (
# tests/k8s/build.sh) and containerd, ctr and runc on PATH. TETHER_NODE_IP overrides the node's
# address (default: this machine's address on its default route; kubelet refuses loopback).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=inputs.sh
source "$here/inputs.sh"
# shellcheck source-path=SCRIPTDIR source=../k8s/lib.sh
source "$here/../k8s/lib.sh"
# shellcheck source-path=SCRIPTDIR source=host.sh
source "$here/host.sh"

usage() { echo "usage: node.sh start|stop DIR NAME" >&2; exit 2; }
(($# == 3)) || usage
cmd=$1 dir=$2 name=$3
[[ $name =~ ^[a-z0-9]([-.a-z0-9]{0,30}[a-z0-9])?$ ]] || { echo "node.sh: bad node name '$name'" >&2; exit 2; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
changes="$dir/host-changes"
cgroup="tether-node-$name"
bridge="tn-$name"
bridge=${bridge:0:15}
sock="$dir/containerd/containerd.sock"

node_ip() {
	if [[ -n ${TETHER_NODE_IP:-} ]]; then
		echo "$TETHER_NODE_IP"
		return
	fi
	ip -4 route get 192.0.2.254 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n1
}

write_containerd_config() {
	local stream_port=$1
	cat >"$dir/containerd/config.toml" <<EOF
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$sock"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:$PAUSE_TAG"
  # Root here lacks CAP_SYS_RESOURCE: runc could not set the sandbox's oom_score_adj below ours.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "$stream_port"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$dir/containerd/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$cni_bin"
    conf_dir = "$dir/cni/net.d"
EOF
	mkdir -p "$dir/cni/net.d"
	# A bridge of this node only, not a gateway and without masquerade: no forwarding or
	# iptables change on the host. The addresses are the node's own /24 (host-local's state in DIR).
	cat >"$dir/cni/net.d/10-tether.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "tether-$name", "plugins": [{"type": "bridge", "bridge": "$bridge",
 "isGateway": false, "ipMasq": false, "hairpinMode": true,
 "ipam": {"type": "host-local", "dataDir": "$dir/cni/ipam", "ranges": [[{"subnet": "$pod_cidr"}]]}}]}
EOF
}

write_kubelet_config() {
	local ip=$1 port=$2 healthz=$3
	cat >"$dir/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: "$ip"
port: $port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz
containerRuntimeEndpoint: "unix://$sock"
cgroupDriver: cgroupfs
cgroupRoot: "/$cgroup"
# This machine is cgroup v1 (hybrid); kubelet 1.35 and later refuse it without this.
failCgroupV1: false
failSwapOn: false
podLogsDir: "$dir/pod-logs"
staticPodPath: ""
# kube-apiserver's requests (logs, exec) carry a client certificate of the cluster's CA.
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$TETHER_K8S_CA"}
authorization: {mode: AlwaysAllow}
# The disk is shared and often above the default thresholds: eviction would taint the node.
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
# Volumes in use are reported with the node's status: a detach waits for the next report.
nodeStatusUpdateFrequency: 2s
EOF
}

start() {
	[[ ! -s $changes ]] || { echo "node.sh: $dir already holds a node (stop it first)" >&2; exit 1; }
	[[ -n ${KUBECONFIG:-} ]] || { echo "node.sh: KUBECONFIG (the cluster's admin) is not set" >&2; exit 1; }
	local kubelet="$k8s_bin/kubelet" ip images
	[[ -x $kubelet ]] || { echo "node.sh: no $kubelet (tests/k8s/build.sh)" >&2; exit 1; }
	ip=$(node_ip)
	[[ -n $ip && $ip != 127.* ]] || { echo "node.sh: no usable node IP (set TETHER_NODE_IP)" >&2; exit 1; }
	images=$("$here/images.sh")
	cni_bin=$("$here/cni.sh")
	pod_cidr="10.$((200 + $(cksum <<<"$name" | cut -d' ' -f1) % 50)).$(($(cksum <<<"$name" | cut -d' ' -f1) / 50 % 250)).0/24"
	mkdir -p "$dir/containerd" "$dir/kubelet" "$dir/pod-logs"
	: >"$changes"
	# A start that fails half-way leaves nothing behind either.
	trap 'status=$?; if ((status != 0)); then tail -n 20 "$dir"/*.log >&2 || true; stop || true; fi' EXIT

	host_cgroup_create "$changes" "$cgroup"
	# What every node changes alike (the folders kubelet and containerd 1.6 write whatever their
	# root, kubelet's sysctls): one record for all the nodes of this machine, undone by the last.
	host_shared_join "$changes" "$dir"
	host_link_record "$changes" "$bridge"

	write_containerd_config "$(free_port)"
	host_run_in_cgroup "$cgroup" "$dir/containerd.pid" "$dir/containerd.log" \
		containerd --config "$dir/containerd/config.toml"
	local waited=0
	until [[ -S $sock ]] && ctr -a "$sock" version >/dev/null 2>&1; do
		alive "$dir/containerd.pid" || { echo "node.sh: containerd exited" >&2; exit 1; }
		((waited++ < 600)) || { echo "node.sh: containerd does not serve after 60 s" >&2; exit 1; }
		sleep 0.1
	done
	local image
	for image in "$images"/*.tar; do
		ctr -a "$sock" -n k8s.io images import "$image" >/dev/null
	done

	write_kubelet_config "$ip" "$(free_port)" "$(free_port)"
	host_run_in_cgroup "$cgroup" "$dir/kubelet.pid" "$dir/kubelet.log" \
		"$kubelet" --config "$dir/kubelet/config.yaml" --kubeconfig "$KUBECONFIG" \
		--root-dir "$dir/kubelet/root" --cert-dir "$dir/kubelet/pki" \
		--hostname-override "$name" --node-ip "$ip" --v=2
	echo "node $name: containerd $sock, kubelet on $ip, pods $pod_cidr, cgroup /$cgroup" >&2
}

# A shim killed with its containers leaves its socket in /run/containerd/s, named by containerd
# 1.6 after sha256("<containerd address>/<namespace>/<sandbox id>"): recorded for host_undo.
record_shim_sockets() {
	[[ -f $changes ]] && alive "$dir/containerd.pid" || return 0
	local id
	for id in $(ctr -a "$sock" -n k8s.io containers ls -q 2>/dev/null); do
		echo "file /run/containerd/s/$(printf '%s' "$sock/k8s.io/$id" | sha256sum | cut -d' ' -f1)" >>"$changes"
	done
}

# Goes on past a failed step (the rest is still undone) and fails at the end if one did.
stop() {
	local status=0
	# plugin.sh's tether-csi first (on SIGTERM it removes its registration socket), then kubelet,
	# so that it does not restart what is being stopped.
	stop_one "$dir/plugin.pid"
	stop_one "$dir/kubelet.pid"
	record_shim_sockets
	stop_one "$dir/containerd.pid"
	# Everything else the node ran (shims, containers) is in its pids cgroup; only a cgroup this
	# folder's node made, so that a start refused for a taken name kills nothing.
	if grep -qxF "cgroup $(host_track_root)/$cgroup" "$changes" 2>/dev/null; then
		host_cgroup_kill "$cgroup" || status=1
	fi
	host_detach_loops_under "$dir" || status=1
	host_unmount_under "$dir" || status=1
	if [[ -f $changes ]]; then
		host_undo "$changes" || status=1
	fi
	((status != 0)) || rm -f "$changes"
	return $status
}

case $cmd in
start) start ;;
stop) stop ;;
*) usage ;;
esac
