# The driver's Kubernetes layer against the real API server of tests/k8s: events posted on a PVC
# (driver/tests/k8s.rs, the test marked ignored because it needs the server). The test binary is
# built before the server starts, so the server does not idle while it compiles.
.PHONY: k8s-driver-build

K8S_TESTS += '$(CARGO) test -p tether-driver --locked --test k8s -- --ignored'

k8s-driver-build:
	$(CARGO) test -p tether-driver --locked --test k8s --no-run

test-k8s: k8s-driver-build
