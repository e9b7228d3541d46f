# The Kubernetes external-storage e2e suite against tether-csi on real kubelets (issue 21,
# scenario 5; tests/node/e2e.sh, results in tests/k8s/README.md). test-e2e-focused runs the
# patterns that fit make test's budget (16 specs, about 5 minutes here); test-e2e every
# applicable spec (not in make test). Both need root, containerd, runc and ctr (tests/node/).
.PHONY: e2e-build test-e2e-focused test-e2e

TEST_STEPS += test-e2e-focused

# tether-csi before any server starts (the Kubernetes binaries come from k8s-build, containerd
# and runc from node-install).
e2e-build: k8s-build node-install
	$(CARGO) build -p tether-driver --locked --bin tether-csi

test-e2e-focused: e2e-build
	tests/node/e2e.sh focused

test-e2e: e2e-build
	tests/node/e2e.sh full
