# The tier driven by the real Kubernetes control plane (issue 11): driver/tests/k8s_tier.rs against
# kube-controller-manager, the external-provisioner and external-attacher and two tether-csi
# replicas (tests/k8s/stack.sh), on a cluster of its own so the other tests' objects and the
# attach/detach controller never meet. --nocapture prints the figures the scenarios record.
.PHONY: k8s-tier-build test-k8s-tier

K8S_TIER_TESTS += '$(CARGO) test -p tether-driver --locked --test k8s_tier -- --ignored --test-threads=1 --nocapture'

# Proxy mode (issue 20): the scenarios that hold for any upstream, on a control plane of its own
# whose replicas each serve in front of the e2e mock CSI driver with attach disabled, so Tether
# alone keeps the second node out of an RWO volume (s12 races Pods for it).
K8S_PROXY_TIER_TESTS += '$(CARGO) test -p tether-driver --locked --test k8s_tier -- --ignored --test-threads=1 --nocapture s2_ s3_ s4_ s12_'
test-k8s: proxy-mock

# The test binary and tether-csi, before any server starts.
k8s-tier-build:
	$(CARGO) test -p tether-driver --locked --test k8s_tier --no-run
	$(CARGO) build -p tether-driver --locked --bin tether-csi

test-k8s: k8s-tier-build

# The tier alone (make test-k8s runs it after the other Kubernetes tests).
test-k8s-tier: k8s-build k8s-tier-build
	tests/k8s/run.sh --stack $(K8S_TIER_TESTS)
