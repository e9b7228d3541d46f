# The Rust workspace as a whole: formatting, clippy, the core engine's tests, bench builds.
.PHONY: test-rust lint fmt-check test-core test-loom bench bench-callgrind

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

# Instructions per grace check (callgrind counts instructions, so load does not move them).
bench-callgrind:
	$(CARGO) build --release -p tether-benches --example grace_cost --locked
	@for f in run_engine run_floor run_baseline run_engine_miss run_floor_miss run_baseline_miss; do \
		n=$$(valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect="grace_cost::$$f" \
			target/release/examples/grace_cost 2>&1 | sed -n 's/.*Collected : //p'); \
		echo "callgrind grace_cost::$$f: $$((n / 100000)) instructions per grace check"; \
	done
