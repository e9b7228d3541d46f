# Proxy mode (issue 20): tether-csi --upstream in front of the Kubernetes e2e suite's mock CSI
# driver, built from the Go module proxy at the tier's Kubernetes version by
# tests/proxy/build-mock.sh (after k8s-build, whose module it takes its replaces from): the Rust
# scenarios against it (driver/tests/proxy_mock.rs), then csi-sanity against the mock alone and
# through the proxy, attach enabled and disabled; and the contract corpus's CSI runner through
# the proxy in front of a recording upstream (TETHER_CORPUS_PROXY=1). driver/tests/proxy.rs (a recording upstream)
# runs with every driver test in test-driver-cargo.
.PHONY: test-proxy proxy-mock

TEST_STEPS += test-proxy

proxy-mock: k8s-build
	tests/proxy/build-mock.sh >/dev/null

test-proxy: proxy-mock $(CSI_SANITY)
	TETHER_CORPUS_PROXY=1 $(CARGO) test -p tether-driver --locked --test corpus
	TETHER_CSI_MOCK=$$(tests/proxy/build-mock.sh) $(CARGO) test -p tether-driver --locked --test proxy_mock -- --ignored
	$(CARGO) build -p tether-driver --bin tether-csi --locked
	tests/proxy/sanity.sh $(DRIVER_DEBUG_BIN) $(CSI_SANITY) $$(tests/proxy/build-mock.sh)
