# The real API server tier (tests/k8s): etcd and kube-apiserver built from the Go module proxy at the
# versions pinned in tests/k8s/versions.env, cached outside the tree in $(TETHER_K8S_CACHE) and
# reused; started on 127.0.0.1, the deploy/ manifests and RBAC tested against them, then stopped.
.PHONY: test-k8s k8s-build k8s-vet

TEST_STEPS += test-k8s

GO ?= go
export TETHER_K8S_CACHE ?= $(HOME)/.cache/tether-k8s

# Cold: minutes of compiling (figures in tests/k8s/README.md); warm: a check that both binaries exist.
k8s-build:
	tests/k8s/build.sh >/dev/null

k8s-vet:
	cd tests/k8s/apitest && $(GO) vet ./...

test-k8s: k8s-build k8s-vet
	tests/k8s/run.sh
