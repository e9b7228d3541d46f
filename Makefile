# Tether: `make run` starts the driver on its embedded store; `make test` sets up and runs every test.
# Each part of the project owns one fragment in mk/ that adds its targets to TEST_STEPS.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

TEST_STEPS :=

# Pinned tools the fragments build (cbindgen, csi-sanity, ...) live outside the clone, each in a
# folder named after its version, so later clones on the same machine reuse them.
export TOOLS_CACHE ?= $(HOME)/.cache/tether-tools

include mk/rust.mk
include $(sort $(filter-out mk/rust.mk,$(wildcard mk/*.mk)))

.PHONY: test
test: $(TEST_STEPS)
	@echo "make test: all steps passed ($(TEST_STEPS))"
