# Every gRPC client on the socket: `make test-interop` runs grpcio (pinned, in its own venv)
# against tether-csi on a Unix socket, on a default channel (which sends the socket path as
# :authority) and on one that sends localhost. csi-sanity in mk/driver.mk covers grpc-go.
.PHONY: test-interop bench-interop

TEST_STEPS += test-interop

INTEROP_VENV := $(CURDIR)/.cache/interop-venv
# A copy of the pins it was installed with, so the install runs once per change of the pins.
INTEROP_TOOLS := $(INTEROP_VENV)/.installed

$(INTEROP_TOOLS): tests/interop/requirements.txt
	rm -rf $(INTEROP_VENV)
	$(PYTHON) -m venv $(INTEROP_VENV)
	$(INTEROP_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
	cp tests/interop/requirements.txt $@

test-interop: $(INTEROP_TOOLS)
	$(CARGO) build -p tether-driver --bin tether-csi --locked
	tests/interop/run.sh $${CARGO_TARGET_DIR:-target}/debug/tether-csi $(INTEROP_VENV)/bin/python

# What the adapter costs a grpcio client: Probe on a default channel beside a valid-authority one.
bench-interop: $(INTEROP_TOOLS)
	$(CARGO) build --release -p tether-driver --bin tether-csi --locked
	tests/interop/run.sh --bench $${CARGO_TARGET_DIR:-target}/release/tether-csi $(INTEROP_VENV)/bin/python
