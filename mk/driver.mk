# The CSI driver tether-csi: `make run` starts it standalone; `make test-driver` runs its Rust
# tests (fencing flows, kill-and-restart), csi-sanity over a Unix socket, and the metrics test.
.PHONY: run test-driver test-driver-cargo test-driver-sanity test-driver-metrics grpcurl

TEST_STEPS += test-driver

GO ?= go
PYTHON ?= python3
CSI_SANITY_VERSION := v5.6.0
CSI_SANITY := $(TOOLS_CACHE)/csi-sanity-$(CSI_SANITY_VERSION)/csi-sanity
GRPCURL_VERSION := v1.9.3
GRPCURL := $(TOOLS_CACHE)/grpcurl-$(GRPCURL_VERSION)/grpcurl
PROMETHEUS_CLIENT_VERSION := 0.23.1
METRICS_VENV := .cache/driver-venv
DRIVER_DEBUG_BIN := target/debug/tether-csi
RUN_SOCKET := $(CURDIR)/run/csi.sock
RUN_NODE := node-1

# Go tools install, pinned, into the shared tools cache (Go's own module cache holds their sources).
$(CSI_SANITY):
	GOBIN=$(abspath $(dir $@)) $(GO) install github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@$(CSI_SANITY_VERSION)

$(GRPCURL):
	GOBIN=$(abspath $(dir $@)) $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

grpcurl: $(GRPCURL)

$(METRICS_VENV)/.installed-$(PROMETHEUS_CLIENT_VERSION):
	rm -rf $(METRICS_VENV)
	$(PYTHON) -m venv $(METRICS_VENV)
	$(METRICS_VENV)/bin/pip install --quiet prometheus_client==$(PROMETHEUS_CLIENT_VERSION)
	touch $@

test-driver: test-driver-cargo test-driver-sanity test-driver-metrics

# Builds the binary first: the restart test runs it as a child process.
test-driver-cargo:
	$(CARGO) test -p tether-driver --locked

test-driver-sanity: $(CSI_SANITY)
	$(CARGO) build -p tether-driver --bin tether-csi --locked
	tests/csi/sanity.sh $(DRIVER_DEBUG_BIN) $(CSI_SANITY)

# The scripted sequence is driver/examples/metrics_scenario.rs; the script runs it with cargo.
test-driver-metrics: $(METRICS_VENV)/.installed-$(PROMETHEUS_CLIENT_VERSION)
	$(METRICS_VENV)/bin/python tests/csi/metrics_test.py

run:
	$(CARGO) build --release -p tether-driver --bin tether-csi --locked
	mkdir -p run/state
	@echo "tether-csi: CSI on unix://$(RUN_SOCKET), node $(RUN_NODE) (also node-2, node-3), state in run/state"
	@echo "  metrics:  curl -s http://127.0.0.1:9809/metrics | grep rds_csi"
	@echo "  health:   curl -s http://127.0.0.1:9809/healthz  /readyz"
	@echo "  gRPC:     make grpcurl, then e.g."
	@echo "    $(GRPCURL) -plaintext -import-path driver/proto -proto csi.proto \\"
	@echo "      -d '{\"name\":\"pvc-1\",\"volume_capabilities\":[{\"mount\":{},\"access_mode\":{\"mode\":\"SINGLE_NODE_WRITER\"}}]}' \\"
	@echo "      unix://$(RUN_SOCKET) csi.v1.Controller/CreateVolume"
	@echo "  stop:     Ctrl-C (or SIGTERM): in-flight calls finish, the socket is removed"
	exec $${CARGO_TARGET_DIR:-target}/release/tether-csi --endpoint unix://$(RUN_SOCKET) --node-id $(RUN_NODE) --nodes node-2,node-3 \
		--state-dir run/state --metrics-address 127.0.0.1:9809
