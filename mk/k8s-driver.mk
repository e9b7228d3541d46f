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
