# The Rust workspace as a whole: formatting, clippy, the core engine's tests, bench builds.
.PHONY: test-rust lint fmt-check test-core test-loom bench

TEST_STEPS += lint test-core test-loom

fmt-check:
	$(CARGO) fmt --all -- --check

lint: fmt-check
	$(CARGO) clippy --workspace --all-targets --all-features --locked -- -D warnings

test-core:
	$(CARGO) test -p tether-core --all-features --locked
	$(CARGO) test -p tether-benches --locked

# loom explores every interleaving of the atomics read outside entry guards.
test-loom:
	RUSTFLAGS="--cfg loom" $(CARGO) test -p tether-core --lib --release --locked --target-dir target/loom loom_tests

bench:
	$(CARGO) bench -p tether-benches
