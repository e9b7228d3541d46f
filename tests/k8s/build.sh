#!/usr/bin/env bash
# Builds the tier's binaries from the Go module proxy at the pinned versions into a cache folder
# outside the repository, and reuses them when present: etcd, kube-apiserver,
# kube-controller-manager, and for the node tier (tests/node/) kubelet, kube-scheduler, the e2e
# suite's `e2e.test`, its agnhost image's binary and the ginkgo CLI that runs it in parallel; and the csi-attacher and csi-provisioner
# sidecars (paths.sh says where). Prints the bin folder of the Kubernetes binaries on stdout.
#
# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local paths, so
# `go install ...@version` refuses it (etcd's server module carries replace directives too). One
# throwaway module generated here requires both releases and points each staging module at its
# published version; replaces of dependencies do not apply in it. Building both binaries in one
# module compiles their shared dependencies (gRPC, protobuf, OpenTelemetry, ...) once, at the
# versions the Kubernetes release resolved.
#
# The sidecars' go.mod files carry replace directives as well, so `go install` refuses them too;
# each is built inside a writable copy of its released module, with that go.mod as it is.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=paths.sh
source "$here/paths.sh"

cache=$k8s_cache root=$k8s_root bin=$k8s_bin
GO=${GO:-go}
# The machine is shared: build at low priority with little parallelism.
export GOFLAGS="-mod=mod -p=${TETHER_K8S_BUILD_JOBS:-2}" GOTOOLCHAIN=local CGO_ENABLED=0
export GOMODCACHE="$cache/gomod" GOCACHE="$cache/gocache"

log() { echo "k8s build: $*" >&2; }

staging_modules=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
	cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api cri-client
	csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
	kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils
	pod-security-admission sample-apiserver sample-cli-plugin sample-controller)

build_module() {
	echo "module tether.invalid/k8s-build"
	echo
	echo "go 1.24.0"
	echo
	echo "require ("
	echo "	k8s.io/kubernetes $K8S_VERSION"
	echo "	go.etcd.io/etcd/server/v3 $ETCD_VERSION"
	echo ")"
	echo
	echo "replace ("
	for m in "${staging_modules[@]}"; do
		echo "	k8s.io/$m => k8s.io/$m $K8S_STAGING_VERSION"
	done
	echo ")"
}

# build NAME PACKAGE LDFLAGS [GO-COMMAND]: one binary into $bin, atomically; GO-COMMAND is `build`
# (a command's main package) or `test -c` (a package's test binary).
build() {
	local src="$root/src" verb
	read -ra verb <<<"${4:-build}"
	mkdir -p "$src"
	# Written once: the builds add their resolved requirements to it.
	[[ -f $src/go.mod ]] || build_module >"$src/go.mod"
	(cd "$src" && nice -n 15 "$GO" "${verb[@]}" -trimpath -ldflags "$3" -o "$bin/$1.tmp" "$2")
	mv "$bin/$1.tmp" "$bin/$1"
}

# build_sidecar OUT MODULE VERSION CMD: cmd/CMD of MODULE@VERSION into OUT, atomically. The module
# cache is read-only and building inside it would write go.sum, hence the copy.
build_sidecar() {
	local out=$1 module=$2 version=$3 cmd=$4 dir src
	dir=$(cd "$cache" && "$GO" mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	[[ -d $dir ]] || { log "no module folder for $module@$version"; return 1; }
	src="$cache/src-$cmd-$version"
	rm -rf "$src"
	cp -r "$dir" "$src"
	chmod -R u+w "$src"
	mkdir -p "$(dirname "$out")"
	(cd "$src" && nice -n 15 "$GO" build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out.tmp" "./cmd/$cmd")
	mv "$out.tmp" "$out"
	rm -rf "$src"
}

# The version kube-apiserver and kube-controller-manager report (and /version serves) would
# otherwise be v0.0.0-master.
k8s_ldflags() {
	local v=${K8S_VERSION#v} pkg=k8s.io/component-base/version minor
	minor=$(cut -d. -f2 <<<"$v")
	echo "-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=${v%%.*} -X $pkg.gitMinor=$minor" \
		"-X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
}

mkdir -p "$bin"
# Two runs on one machine (two clones, two make invocations) build once: the second waits.
exec 9>"$cache/.build.lock"
flock 9
started=$SECONDS built=
if [[ ! -x "$bin/kube-apiserver" ]]; then
	log "building kube-apiserver $K8S_VERSION into $bin (first run only; takes a while)"
	build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$(k8s_ldflags)"
	built=1
fi
if [[ ! -x "$bin/etcd" ]]; then
	log "building etcd $ETCD_VERSION into $bin (first run only)"
	build etcd go.etcd.io/etcd/server/v3 "-s -w"
	built=1
fi
# Built after kube-apiserver, so the packages they share are compiled once (the cache is kept
# until the end of this run).
if [[ ! -x "$bin/kube-controller-manager" ]]; then
	log "building kube-controller-manager $K8S_VERSION into $bin (first run only)"
	build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$(k8s_ldflags)"
	built=1
fi
# The node tier's (tests/node/): in the same module right after kube-controller-manager, so the
# packages they share with it (client-go, the API types, the volume plugins) are compiled once.
# agnhost is the e2e suite's test image's one binary (tests/node/images.sh wraps it).
for node_bin in kubelet:cmd/kubelet kube-scheduler:cmd/kube-scheduler agnhost:test/images/agnhost; do
	if [[ ! -x "$bin/${node_bin%%:*}" ]]; then
		log "building ${node_bin%%:*} $K8S_VERSION into $bin (first run only)"
		build "${node_bin%%:*}" "k8s.io/kubernetes/${node_bin#*:}" "$(k8s_ldflags)"
		built=1
	fi
done
if [[ ! -x "$bin/e2e.test" ]]; then
	log "building e2e.test $K8S_VERSION into $bin (first run only)"
	build e2e.test k8s.io/kubernetes/test/e2e "$(k8s_ldflags)" "test -c"
	built=1
fi
# The ginkgo CLI at the version e2e.test was built with (the module resolves it): only it runs
# the suite's specs in parallel processes.
if [[ ! -x "$bin/ginkgo" ]]; then
	log "building ginkgo (e2e.test's version) into $bin (first run only)"
	build ginkgo github.com/onsi/ginkgo/v2/ginkgo "-s -w"
	built=1
fi
if [[ ! -x $attacher_bin ]]; then
	log "building csi-attacher $ATTACHER_VERSION into $attacher_bin (first run only)"
	build_sidecar "$attacher_bin" "$ATTACHER_MODULE" "$ATTACHER_VERSION" csi-attacher
	built=1
fi
if [[ ! -x $provisioner_bin ]]; then
	log "building csi-provisioner $PROVISIONER_VERSION into $provisioner_bin (first run only)"
	build_sidecar "$provisioner_bin" "$PROVISIONER_MODULE" "$PROVISIONER_VERSION" csi-provisioner
	built=1
fi
if [[ -n $built ]]; then
	# Only the binaries are reused; the compiler's cache (about 2.3 GiB) is not worth keeping.
	rm -rf "$GOCACHE"
	log "built in $((SECONDS - started)) s; $(du -sh "$cache" | cut -f1) in $cache"
fi
echo "$bin"
