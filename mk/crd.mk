# The cluster store's CRDs (deploy/00-crd.yaml) are generated from the Rust types
# (driver/examples/crd.rs); the build fails when the committed file drifts, like include/tether.h.
.PHONY: crd crd-check

TEST_STEPS += crd-check
CRD_FILE := deploy/00-crd.yaml

# Regenerates the committed CRDs (run after changing driver/src/store/kube/resource.rs, then commit).
crd:
	$(CARGO) run -q -p tether-driver --locked --example crd > $(CRD_FILE)

crd-check:
	$(CARGO) run -q -p tether-driver --locked --example crd | diff -u $(CRD_FILE) - \
		|| { echo "$(CRD_FILE) is stale: run 'make crd' and commit it" >&2; exit 1; }
