# The C ABI (ffi/, include/tether.h) and its C consumer (tests/c/): header drift check, the C
# program under ASan+UBSan and under valgrind, the README's C snippet, the crate's Rust tests,
# the contract corpus over the C ABI (tests/c/corpus/) the same two ways, and Miri on the tests
# Miri can run.
.PHONY: test-ffi ffi-tools ffi-lib ffi-hooks-lib ffi-public-symbols ffi-header ffi-header-check ffi-c-asan \
	ffi-c-valgrind ffi-corpus-asan ffi-corpus-valgrind ffi-readme-c ffi-rust-tests ffi-miri bench-ffi

TEST_STEPS += test-ffi

# cbindgen is pinned and cached in the shared tools cache; the folder and stamp name the version,
# so a bump reinstalls.
CBINDGEN_VERSION := 0.29.4
CBINDGEN_ROOT := $(TOOLS_CACHE)/cbindgen-$(CBINDGEN_VERSION)
CBINDGEN_STAMP := $(CBINDGEN_ROOT)/installed-$(CBINDGEN_VERSION)
CBINDGEN := $(CBINDGEN_ROOT)/bin/cbindgen

FFI_BUILD := $(CURDIR)/tests/c/build
FFI_LIB := target/release/libtether.a
# The same library with the `test-hooks` feature (tether_debug_panic, for the panic-boundary
# tests), in a target folder of its own so the two builds never overwrite each other's archive.
FFI_HOOKS_TARGET := $(abspath $(or $(CARGO_TARGET_DIR),target))/test-hooks
FFI_HOOKS_LIB := $(FFI_HOOKS_TARGET)/release/libtether.a
# What the Rust standard library needs from the system when linked statically
# (`cargo rustc -p tether-ffi --release -- --print native-static-libs`).
FFI_LDLIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
FFI_CC ?= gcc
FFI_CFLAGS := -std=c11 -Wall -Wextra -Wpedantic -Werror -g -Iinclude
FFI_ASAN := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
FFI_C_SOURCES := $(wildcard tests/c/*.c)
FFI_HOOKS_CFLAGS := -DTETHER_TEST_HOOKS
# The corpus runner reads JSON with json-c (tests/c/corpus/corpus.h says why that library),
# Debian's libjson-c-dev at this version, found through pkg-config.
JSON_C_PKG := libjson-c-dev=0.16-2
FFI_CORPUS_SOURCES := $(wildcard tests/c/corpus/*.c)
FFI_CORPUS_DIR := tests/contract
# The deliberate-panic test prints Rust's panic report; a backtrace there is only noise.
FFI_RUN_ENV := RUST_BACKTRACE=0

# gcc (with its sanitizer runtimes) and valgrind come with the machine; installed only if missing.
# json-c's headers are installed at the pinned version when pkg-config does not find them.
ffi-tools:
	@command -v $(FFI_CC) >/dev/null && command -v valgrind >/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc valgrind; }
	@pkg-config --exists json-c 2>/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pkgconf $(JSON_C_PKG); }

$(CBINDGEN_STAMP):
	$(CARGO) install cbindgen --version $(CBINDGEN_VERSION) --locked --root $(CBINDGEN_ROOT)
	touch $@

ffi-lib:
	$(CARGO) build -p tether-ffi --release --locked

ffi-hooks-lib:
	CARGO_TARGET_DIR=$(FFI_HOOKS_TARGET) $(CARGO) build -p tether-ffi --release --locked --features test-hooks

# The test hook is no part of the public ABI: not in the header, not exported by the library
# built without the feature (the one `make install` installs; tests/install/c.sh checks the
# installed copy too).
ffi-public-symbols: ffi-lib
	! grep -n tether_debug_panic include/tether.h || { echo "include/tether.h declares the test hook" >&2; exit 1; }
	! nm -D --defined-only target/release/libtether.so | grep -w tether_debug_panic \
		|| { echo "libtether.so exports the test hook" >&2; exit 1; }

# Regenerates the committed header (run after changing the C ABI, then commit the result).
ffi-header: $(CBINDGEN_STAMP)
	$(CBINDGEN) --quiet --config ffi/cbindgen.toml --crate tether-ffi --output include/tether.h ffi

# Fails when the committed header differs from what the sources generate.
ffi-header-check: $(CBINDGEN_STAMP)
	mkdir -p $(FFI_BUILD)
	$(CBINDGEN) --quiet --config ffi/cbindgen.toml --crate tether-ffi --output $(FFI_BUILD)/tether.h ffi
	diff -u include/tether.h $(FFI_BUILD)/tether.h \
		|| { echo "include/tether.h is stale: run 'make ffi-header' and commit it" >&2; exit 1; }

# The C program with AddressSanitizer (and its leak checker) and UBSan; first proves that the
# sanitizer runtime is really in the binary.
ffi-c-asan: ffi-hooks-lib ffi-tools
	mkdir -p $(FFI_BUILD)
	$(FFI_CC) $(FFI_CFLAGS) $(FFI_HOOKS_CFLAGS) $(FFI_ASAN) $(FFI_C_SOURCES) $(FFI_HOOKS_LIB) $(FFI_LDLIBS) \
		-o $(FFI_BUILD)/test-asan
	nm $(FFI_BUILD)/test-asan | grep ' __asan_init' >/dev/null || { echo "ASan is not linked in" >&2; exit 1; }
	ldd $(FFI_BUILD)/test-asan | grep libasan >/dev/null || { echo "libasan is not loaded" >&2; exit 1; }
	$(FFI_RUN_ENV) ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		$(FFI_BUILD)/test-asan

# The same program, unsanitised, under valgrind: any error or leak fails.
ffi-c-valgrind: ffi-hooks-lib ffi-tools
	mkdir -p $(FFI_BUILD)
	$(FFI_CC) $(FFI_CFLAGS) $(FFI_HOOKS_CFLAGS) -O1 $(FFI_C_SOURCES) $(FFI_HOOKS_LIB) $(FFI_LDLIBS) \
		-o $(FFI_BUILD)/test-plain
	$(FFI_RUN_ENV) valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
		--error-exitcode=1 $(FFI_BUILD)/test-plain

# The contract corpus over the C ABI, against the public library: one line per scenario and
# "corpus-c: N passed, N failed"; any failed scenario fails the step. Under ASan+UBSan, then
# unsanitised under valgrind.
FFI_CORPUS_CC = $(FFI_CC) $(FFI_CFLAGS) $(shell pkg-config --cflags json-c) $(FFI_CORPUS_SOURCES) $(FFI_LIB) \
	$(shell pkg-config --libs json-c) $(FFI_LDLIBS)
ffi-corpus-asan: ffi-lib ffi-tools
	mkdir -p $(FFI_BUILD)
	$(FFI_CORPUS_CC) $(FFI_ASAN) -o $(FFI_BUILD)/corpus-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		$(FFI_BUILD)/corpus-asan $(FFI_CORPUS_DIR)

ffi-corpus-valgrind: ffi-lib ffi-tools
	mkdir -p $(FFI_BUILD)
	$(FFI_CORPUS_CC) -O1 -o $(FFI_BUILD)/corpus-plain
	valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=1 \
		$(FFI_BUILD)/corpus-plain $(FFI_CORPUS_DIR) | tail -n 1

# The C snippet of README.md's ffi section is a test too: extracted, compiled, run.
ffi-readme-c: ffi-lib ffi-tools
	mkdir -p $(FFI_BUILD)
	sed -n '/<!-- ffi:start -->/,/<!-- ffi:end -->/p' README.md | sed -n '/^```c$$/,/^```$$/p' | sed '1d;$$d' \
		> $(FFI_BUILD)/readme.c
	test -s $(FFI_BUILD)/readme.c || { echo "no C snippet in README.md's ffi section" >&2; exit 1; }
	$(FFI_CC) $(FFI_CFLAGS) $(FFI_ASAN) $(FFI_BUILD)/readme.c $(FFI_LIB) $(FFI_LDLIBS) -o $(FFI_BUILD)/readme
	$(FFI_RUN_ENV) $(FFI_BUILD)/readme

# With the test hook, for tests/abi.rs's panic test (in target/debug: the release archive stays public).
ffi-rust-tests:
	$(CARGO) test -p tether-ffi --features test-hooks --locked

# Miri needs the nightly toolchain's miri and rust-src components: added when missing; when
# they cannot be had (no nightly toolchain on this machine), the step says so and skips.
MIRI_TOOLCHAIN ?= nightly
ffi-miri:
	@if ! rustup run $(MIRI_TOOLCHAIN) cargo miri --version >/dev/null 2>&1; then \
		rustup component add --toolchain $(MIRI_TOOLCHAIN) miri rust-src >/dev/null 2>&1 || true; \
	fi; \
	if rustup run $(MIRI_TOOLCHAIN) cargo miri --version >/dev/null 2>&1; then \
		echo "cargo +$(MIRI_TOOLCHAIN) miri test -p tether-ffi --features test-hooks"; \
		$(CARGO) +$(MIRI_TOOLCHAIN) miri test -p tether-ffi --features test-hooks --locked; \
	else \
		echo "SKIPPED miri: toolchain '$(MIRI_TOOLCHAIN)' with the miri and rust-src components is not installed and could not be added"; \
	fi

test-ffi: ffi-lib ffi-header-check ffi-public-symbols ffi-c-asan ffi-c-valgrind ffi-corpus-asan ffi-corpus-valgrind \
	ffi-readme-c ffi-rust-tests ffi-miri

# The C ABI against native Rust, in one criterion run, then the same calls' exact instruction
# counts under callgrind (which other load on the machine cannot disturb). Figures in
# benches/README.md.
ABI_COST_RUNS := 20000
bench-ffi:
	$(CARGO) bench -p tether-benches --bench ffi
	$(CARGO) build -p tether-ffi --release --example abi_cost
	@count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/abi_cost $$1 \
		$(ABI_COST_RUNS) 2>&1 | sed -n 's/.*Collected : //p'; }; \
	setup=$$(count setup); \
	for c in native-grace c-grace native-cycle c-cycle; do \
		echo "$$c: $$(( ($$(count $$c) - setup) / $(ABI_COST_RUNS) )) instructions per iteration"; \
	done
