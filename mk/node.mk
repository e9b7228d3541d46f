# The node tier (issue 21): Tether volumes used by real Pods on three real kubelets of this machine
# (tests/node/tier.sh), beside the control plane of tests/k8s/run.sh --stack with the replicas on
# the cluster store, driven by driver/tests/node_tier.rs. Everything that starts kubelets holds
# /tmp/tether-kubelet-dev.lock: the machine's kubelet folders and sysctls are one for all.
.PHONY: test-node node-install node-build

TEST_STEPS += test-node

# Added to the control-plane tier's volume controllers (stack.sh): what a lost node needs
# (s3): the node lifecycle controller marks it NotReady, the taint evicts its Pods, pod GC deletes
# them once the node is out of service.
NODE_CONTROLLERS := node-lifecycle-controller,pod-garbage-collector-controller,taint-eviction-controller
# s3 last: it kills node-a's kubelet.
NODE_TESTS := '$(CARGO) test -p tether-driver --locked --test node_tier -- --ignored --test-threads=1 --nocapture s1_ s2_ s4_' \
	'$(CARGO) test -p tether-driver --locked --test node_tier -- --ignored --test-threads=1 --nocapture s3_'

node-install:
	tests/node/install.sh

# kubelet comes with the tier's other binaries (k8s-build), the images and the CNI plugins are
# cached, and the tests are compiled before any server starts.
node-build: k8s-build
	tests/node/images.sh >/dev/null
	tests/node/cni.sh >/dev/null
	$(CARGO) test -p tether-driver --locked --test node_tier --no-run
	$(CARGO) build -p tether-driver --locked --bin tether-csi

test-node: node-install node-build
	flock /tmp/tether-kubelet-dev.lock env TETHER_TIER_STORE=kubernetes TETHER_TIER_EXTRA_CONTROLLERS=$(NODE_CONTROLLERS) \
		tests/k8s/run.sh --stack "tests/node/tier.sh $(NODE_TESTS)"
