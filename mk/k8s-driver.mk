# The driver's Kubernetes layer against the real API server of tests/k8s: events posted on a PVC
# (driver/tests/k8s.rs), node loss, outage, restart and rebuild, leader election
# (driver/tests/k8s_layer.rs), the cluster store (driver/tests/kube_store.rs); tests marked
# ignored because they need the server, and run one at a time because some stop it. The test binaries are built before the server starts, so the server
# does not idle while they compile.
.PHONY: k8s-driver-build

K8S_TESTS += '$(CARGO) test -p tether-driver --locked --test k8s --test k8s_layer --test kube_store -- --ignored --test-threads=1'
# The contract corpus's CSI runner once more, every driver on the cluster store.
K8S_TESTS += 'TETHER_CORPUS_STORE=kubernetes $(CARGO) test -p tether-driver --locked --test corpus'

k8s-driver-build:
	$(CARGO) test -p tether-driver --locked --test k8s --test k8s_layer --test kube_store --test corpus --no-run

test-k8s: k8s-driver-build

# The cluster tier with nothing shared but the API server (issue 19, driver/tests/cluster_tier.rs):
# two controller replicas and three node plugins, each a tether-csi process on its own directory;
# once more in front of the e2e mock driver (proxy mode, as deploy/proxy/ runs it).
# On an API server of its own: a new leader loads every TetherVolume the server holds, so other
# tests' objects (some hand-edited on purpose) must not be there. --nocapture prints its counts.
.PHONY: k8s-cluster-build test-k8s-cluster

TEST_STEPS += test-k8s-cluster

# The test binary and tether-csi, before the server starts.
k8s-cluster-build:
	$(CARGO) test -p tether-driver --locked --test cluster_tier --no-run

test-k8s-cluster: k8s-build proxy-mock k8s-cluster-build
	TETHER_CSI_MOCK=$$(tests/proxy/build-mock.sh) tests/k8s/run.sh '$(CARGO) test -p tether-driver --locked --test cluster_tier -- --ignored --test-threads=1 --nocapture'
