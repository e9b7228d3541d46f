# The C ABI (ffi/, include/tether.h) and its C consumer (tests/c/): header drift check, the C
# program under ASan+UBSan and under valgrind, the crate's Rust tests, and Miri.
.PHONY: test-ffi ffi-lib ffi-header ffi-header-check

TEST_STEPS += test-ffi

# cbindgen is pinned and cached under .cache; the stamp names the version so a bump reinstalls.
CBINDGEN_VERSION := 0.29.4
CBINDGEN_ROOT := $(CURDIR)/.cache/cbindgen
CBINDGEN_STAMP := $(CBINDGEN_ROOT)/installed-$(CBINDGEN_VERSION)
CBINDGEN := $(CBINDGEN_ROOT)/bin/cbindgen
FFI_BUILD := $(CURDIR)/tests/c/build

$(CBINDGEN_STAMP):
	$(CARGO) install cbindgen --version $(CBINDGEN_VERSION) --locked --root $(CBINDGEN_ROOT)
	touch $@

ffi-lib:
	$(CARGO) build -p tether-ffi --release --locked

# Regenerates the committed header (run after changing the C ABI, then commit the result).
ffi-header: $(CBINDGEN_STAMP)
	$(CBINDGEN) --quiet --config ffi/cbindgen.toml --crate tether-ffi --output include/tether.h ffi

# Fails when the committed header differs from what the sources generate.
ffi-header-check: $(CBINDGEN_STAMP)
	mkdir -p $(FFI_BUILD)
	$(CBINDGEN) --quiet --config ffi/cbindgen.toml --crate tether-ffi --output $(FFI_BUILD)/tether.h ffi
	diff -u include/tether.h $(FFI_BUILD)/tether.h \
		|| { echo "include/tether.h is stale: run 'make ffi-header' and commit it" >&2; exit 1; }

test-ffi: ffi-lib ffi-header-check
