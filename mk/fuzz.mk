# Fuzzing (fuzz/): cargo-fuzz targets on a pinned nightly, each checking the engine's invariants
# after every input. `make fuzz` runs each target for FUZZ_SECONDS and keeps what it finds new in
# fuzz/corpus/<target>/ (minimised with `cargo fuzz cmin`); `make test` replays every stored
# input on stable (fuzz/tests/replay.rs) and runs each target for FUZZ_SMOKE_SECONDS without
# writing into the tree. A crash is saved in
# fuzz/artifacts/<target>/ and fails the step: fix it, then move the input to
# fuzz/regressions/<target>/, where both replays keep running it.
.PHONY: fuzz test-fuzz fuzz-replay fuzz-smoke fuzz-toolchain

TEST_STEPS += test-fuzz

CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ_ROOT := $(TOOLS_CACHE)/cargo-fuzz-$(CARGO_FUZZ_VERSION)
CARGO_FUZZ_STAMP := $(CARGO_FUZZ_ROOT)/installed-$(CARGO_FUZZ_VERSION)
# The nightly the targets build with: the machine's `nightly` toolchain, checked to be this one
# (no other toolchain can be downloaded here).
FUZZ_NIGHTLY_DATE := 2026-05-19
FUZZ_TARGETS := snapshot_restore store_records controller_requests abi_calls node_requests
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 3
FUZZ := PATH=$(CARGO_FUZZ_ROOT)/bin:$$PATH $(CARGO) +nightly fuzz

$(CARGO_FUZZ_STAMP):
	$(CARGO) install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked --root $(CARGO_FUZZ_ROOT)
	touch $@

fuzz-toolchain:
	@rustc +nightly --version | grep -q '$(FUZZ_NIGHTLY_DATE)' || { \
		echo "fuzzing is pinned to nightly $(FUZZ_NIGHTLY_DATE); found: $$(rustc +nightly --version 2>&1)" >&2; exit 1; }

# In the root workspace's target folder: the crates it built already are reused (fuzz/Cargo.lock
# starts from the root's Cargo.lock).
fuzz-replay:
	$(CARGO) test --manifest-path fuzz/Cargo.toml --no-default-features --locked \
		--target-dir $${CARGO_TARGET_DIR:-$(CURDIR)/target} -- --nocapture

# New inputs go to a scratch folder first: `make test` leaves the tree as it was.
fuzz-smoke: $(CARGO_FUZZ_STAMP) fuzz-toolchain
	for t in $(FUZZ_TARGETS); do \
		scratch=$$(mktemp -d); mkdir -p fuzz/artifacts/$$t fuzz/regressions/$$t; \
		$(FUZZ) run -O --fuzz-dir fuzz $$t $$scratch fuzz/corpus/$$t fuzz/regressions/$$t -- \
			-max_total_time=$(FUZZ_SMOKE_SECONDS) -max_len=8192 -artifact_prefix=fuzz/artifacts/$$t/ \
			-print_final_stats=1 > $$scratch.log 2>&1 \
			|| { tail -40 $$scratch.log; echo "fuzz target $$t failed: the input is in fuzz/artifacts/$$t/" >&2; exit 1; }; \
		echo "fuzz $$t: $$(sed -n 's/^stat::number_of_executed_units: *//p' $$scratch.log) inputs in $(FUZZ_SMOKE_SECONDS) s, no invariant broken"; \
		rm -rf $$scratch $$scratch.log; \
	done

test-fuzz: fuzz-replay fuzz-smoke

fuzz: $(CARGO_FUZZ_STAMP) fuzz-toolchain
	for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/artifacts/$$t fuzz/regressions/$$t; \
		$(FUZZ) run -O --fuzz-dir fuzz $$t fuzz/corpus/$$t fuzz/regressions/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -max_len=8192 -artifact_prefix=fuzz/artifacts/$$t/ || exit 1; \
		$(FUZZ) cmin -O --fuzz-dir fuzz $$t fuzz/corpus/$$t || exit 1; \
	done
