# The real API server tier (tests/k8s): etcd and kube-apiserver built from the Go module proxy at the
# versions pinned in tests/k8s/versions.env, cached outside the tree in $(TETHER_K8S_CACHE) and
# reused; started on 127.0.0.1, the deploy/ manifests and RBAC tested against them, then stopped.
.PHONY: test-k8s k8s-build k8s-vet

TEST_STEPS += test-k8s

GO ?= go
export TETHER_K8S_CACHE ?= $(HOME)/.cache/tether-k8s

# The commands run against one API server, in order, from the repository root (see
# tests/k8s/README.md for their environment). Another fragment may append its own, e.g.
#   K8S_TESTS += 'cargo test -p tether-driver --locked --test k8s'
# and make test-k8s depend on building them first, so the server does not idle while they compile.
K8S_TESTS += 'cd tests/k8s/apitest && $(GO) test -count=1 ./...'
# Commands that also need the rest of the control plane (tests/k8s/stack.sh) run afterwards, on a
# cluster of their own (tests/k8s/run.sh --stack); mk/k8s-tier.mk adds them.
K8S_TIER_TESTS ?=
# The same, on a control plane whose replicas serve in front of an upstream (stack.sh's proxy mode).
K8S_PROXY_TIER_TESTS ?=

# Cold: about 11 minutes of compiling here (figures in tests/k8s/README.md); warm: every binary exists.
k8s-build:
	tests/k8s/build.sh >/dev/null

k8s-vet:
	cd tests/k8s/apitest && $(GO) vet ./...

test-k8s: k8s-build k8s-vet
	tests/k8s/run.sh $(K8S_TESTS)
	$(if $(strip $(K8S_TIER_TESTS)),tests/k8s/run.sh --stack $(K8S_TIER_TESTS))
	$(if $(strip $(K8S_PROXY_TIER_TESTS)),TETHER_TIER_UPSTREAM=$$(tests/proxy/build-mock.sh) tests/k8s/run.sh --stack $(K8S_PROXY_TIER_TESTS))
