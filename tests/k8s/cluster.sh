#!/usr/bin/env bash
# Starts and stops a throwaway etcd + kube-apiserver on 127.0.0.1 (the real API server tier).
#
#   cluster.sh start DIR            certificates, tokens, kubeconfigs and both servers, state in DIR;
#                                   waits for /readyz; writes DIR/env (sourceable, see below)
#   cluster.sh stop DIR             stops both (idempotent), whatever state they are in
#   cluster.sh stop-apiserver DIR   stops only kube-apiserver (tests of an absent API server)
#   cluster.sh start-apiserver DIR  starts it again on the same port, waits for /readyz
#
# Binaries come from TETHER_K8S_BIN (default: what build.sh prints). DIR/env exports
# TETHER_K8S_SERVER, TETHER_K8S_CA, TETHER_K8S_{ADMIN,DRIVER,NODE,PROBE,NOBODY}_TOKEN,
# TETHER_K8S_{ADMIN,DRIVER,NODE}_KUBECONFIG, TETHER_K8S_DIR and TETHER_K8S_CTL (this script).
# TETHER_K8S_FSYNC=1 starts etcd with fsync on (by default it runs --unsafe-no-fsync).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"

# The identities of the static token file: user and groups. The driver's and the node plugin's are
# their ServiceAccount users (RBAC matches the name); probe and nobody have no binding in deploy/
# (tests bind the probe).
DRIVER_USER=system:serviceaccount:tether:tether-csi-controller
NODE_USER=system:serviceaccount:tether:tether-csi-node
SA_GROUPS=system:serviceaccounts,system:serviceaccounts:tether
READY_TIMEOUT=${TETHER_K8S_READY_TIMEOUT:-240}

log() { echo "k8s cluster: $*" >&2; }
die() { log "$*"; exit 1; }

make_certs() {
	local d=$1/pki
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tether-test-ca" \
		-keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
		-keyout "$d/apiserver.key" -out "$d/apiserver.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' \
		>"$d/apiserver.ext"
	openssl x509 -req -in "$d/apiserver.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
		-extfile "$d/apiserver.ext" -out "$d/apiserver.crt" 2>/dev/null
	# kube-apiserver's client certificate towards kubelets (logs, exec), for a tier with real ones.
	openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" \
		-keyout "$d/kubelet-client.key" -out "$d/kubelet-client.csr" 2>/dev/null
	printf 'extendedKeyUsage=clientAuth\n' >"$d/kubelet-client.ext"
	openssl x509 -req -in "$d/kubelet-client.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
		-extfile "$d/kubelet-client.ext" -out "$d/kubelet-client.crt" 2>/dev/null
	openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
	openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

make_tokens() {
	local dir=$1 admin driver node probe nobody
	admin=$(openssl rand -hex 24) driver=$(openssl rand -hex 24) node=$(openssl rand -hex 24)
	probe=$(openssl rand -hex 24) nobody=$(openssl rand -hex 24)
	{
		echo "$admin,tether-admin,uid-admin,\"system:masters\""
		echo "$driver,$DRIVER_USER,uid-driver,\"$SA_GROUPS\""
		echo "$node,$NODE_USER,uid-node,\"$SA_GROUPS\""
		echo "$probe,tether-rbac-probe,uid-probe"
		echo "$nobody,tether-nobody,uid-nobody"
	} >"$dir/pki/tokens.csv"
	chmod 600 "$dir/pki/tokens.csv"
	{
		echo "export TETHER_K8S_ADMIN_TOKEN=$admin"
		echo "export TETHER_K8S_DRIVER_TOKEN=$driver"
		echo "export TETHER_K8S_NODE_TOKEN=$node"
		echo "export TETHER_K8S_PROBE_TOKEN=$probe"
		echo "export TETHER_K8S_NOBODY_TOKEN=$nobody"
	} >"$dir/tokens.env"
}

# A self-contained kubeconfig (CA embedded) for one token.
write_kubeconfig() {
	local file=$1 server=$2 ca=$3 user=$4 token=$5
	cat >"$file" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: tether-test
    cluster:
      server: $server
      certificate-authority-data: $(base64 -w0 <"$ca")
users:
  - name: $user
    user:
      token: $token
contexts:
  - name: $user@tether-test
    context:
      cluster: tether-test
      user: $user
      namespace: tether
current-context: $user@tether-test
KUBECONFIG
	chmod 600 "$file"
}

start_etcd() {
	local dir=$1 bin=$2 client=$3 peer=$4 fsync=(--unsafe-no-fsync)
	# --unsafe-no-fsync: a throwaway store on a shared disk; durability is not under test.
	# TETHER_K8S_FSYNC=1 keeps etcd's fsync, as a real cluster runs it (for benchmark figures).
	[[ -z ${TETHER_K8S_FSYNC:-} ]] || fsync=()
	setsid "$bin/etcd" --name tether-test --data-dir "$dir/etcd-data" \
		--listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
		--listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
		--initial-cluster "tether-test=http://127.0.0.1:$peer" "${fsync[@]}" --log-level warn \
		>>"$dir/etcd.log" 2>&1 </dev/null &
	echo $! >"$dir/etcd.pid"
}

start_apiserver() {
	local dir=$1 bin port etcd_port
	bin=$(cat "$dir/bin-dir") port=$(cat "$dir/apiserver.port") etcd_port=$(cat "$dir/etcd.port")
	# A real kubelet (tests/node/) is reached at its Node's InternalIP, not its name, which does
	# not resolve here; it trusts the cluster's CA for the client certificate.
	setsid "$bin/kube-apiserver" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$port" \
		--etcd-servers="http://127.0.0.1:$etcd_port" --cert-dir="$dir/pki/generated" \
		--tls-cert-file="$dir/pki/apiserver.crt" --tls-private-key-file="$dir/pki/apiserver.key" \
		--token-auth-file="$dir/pki/tokens.csv" --authorization-mode=RBAC --anonymous-auth=false \
		--service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$dir/pki/sa.pub" \
		--service-account-signing-key-file="$dir/pki/sa.key" --service-cluster-ip-range=10.96.0.0/24 \
		--allow-privileged=true --profiling=false --v=1 \
		--kubelet-preferred-address-types=InternalIP --kubelet-client-certificate="$dir/pki/kubelet-client.crt" \
		--kubelet-client-key="$dir/pki/kubelet-client.key" \
		>>"$dir/apiserver.log" 2>&1 </dev/null &
	echo $! >"$dir/apiserver.pid"
	wait_ready "$dir"
}

wait_ready() {
	local dir=$1 deadline=$((SECONDS + READY_TIMEOUT)) server token
	server=$(cat "$dir/server") token=$(grep ADMIN_TOKEN "$dir/tokens.env" | cut -d= -f2)
	until curl -sf --max-time 5 --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $token" \
		"$server/readyz" >/dev/null; do
		alive "$dir/etcd.pid" || { tail -20 "$dir/etcd.log" >&2; die "etcd exited"; }
		alive "$dir/apiserver.pid" || { tail -30 "$dir/apiserver.log" >&2; die "kube-apiserver exited"; }
		((SECONDS < deadline)) || { tail -30 "$dir/apiserver.log" >&2; die "not ready after ${READY_TIMEOUT}s"; }
		sleep 1
	done
	log "kube-apiserver ready at $server"
}

cmd_start() {
	local dir=$1 bin etcd_port peer_port port server
	bin=${TETHER_K8S_BIN:-$("$here/build.sh")}
	[[ -x $bin/etcd && -x $bin/kube-apiserver ]] || die "no etcd/kube-apiserver in $bin"
	mkdir -p "$dir"
	echo "$bin" >"$dir/bin-dir"
	make_certs "$dir"
	make_tokens "$dir"
	etcd_port=$(free_port) peer_port=$(free_port) port=$(free_port)
	echo "$etcd_port" >"$dir/etcd.port"
	echo "$port" >"$dir/apiserver.port"
	server="https://127.0.0.1:$port"
	echo "$server" >"$dir/server"
	# shellcheck source=/dev/null
	source "$dir/tokens.env"
	write_kubeconfig "$dir/admin.kubeconfig" "$server" "$dir/pki/ca.crt" tether-admin "$TETHER_K8S_ADMIN_TOKEN"
	write_kubeconfig "$dir/driver.kubeconfig" "$server" "$dir/pki/ca.crt" tether-csi-controller \
		"$TETHER_K8S_DRIVER_TOKEN"
	write_kubeconfig "$dir/node.kubeconfig" "$server" "$dir/pki/ca.crt" tether-csi-node "$TETHER_K8S_NODE_TOKEN"
	{
		cat "$dir/tokens.env"
		echo "export TETHER_K8S_DIR=$dir"
		echo "export TETHER_K8S_SERVER=$server"
		echo "export TETHER_K8S_CA=$dir/pki/ca.crt"
		echo "export TETHER_K8S_ADMIN_KUBECONFIG=$dir/admin.kubeconfig"
		echo "export TETHER_K8S_DRIVER_KUBECONFIG=$dir/driver.kubeconfig"
		echo "export TETHER_K8S_NODE_KUBECONFIG=$dir/node.kubeconfig"
		echo "export TETHER_K8S_CTL=$here/cluster.sh"
	} >"$dir/env"
	start_etcd "$dir" "$bin" "$etcd_port" "$peer_port"
	start_apiserver "$dir"
}

cmd_stop() {
	local dir=$1
	stop_one "$dir/apiserver.pid"
	stop_one "$dir/etcd.pid"
}

[[ $# -eq 2 ]] || die "usage: $0 start|stop|stop-apiserver|start-apiserver DIR"
case $1 in
start) cmd_start "$2" ;;
stop) cmd_stop "$2" ;;
stop-apiserver) stop_one "$2/apiserver.pid" ;;
start-apiserver) alive "$2/apiserver.pid" || start_apiserver "$2" ;;
*) die "unknown command $1" ;;
esac
