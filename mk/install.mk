# Tether as its users install it: `make install` (C library, header, pkg-config file), `make wheel`
# (Python wheel and sdist), `make image` (the tether-csi image tarball); `make test-install` uses
# each one from outside the source tree. Figures and layout in tests/install/README.md.
.PHONY: install install-stage install-stage-hooks install-tools image-runtime-tools wheel image test-install test-install-c test-install-go \
	test-install-wheel test-install-image

TEST_STEPS += test-install

GO ?= go
PREFIX ?= /usr/local
DESTDIR ?=
CARGO_OUT := $(abspath $(or $(CARGO_TARGET_DIR),target))
# The version and the repository are written once, in Cargo.toml's [workspace.package]; the Go
# module path in ffi/go/go.mod must be the repository's path plus /ffi/go (checked below).
TETHER_VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml)
TETHER_REPOSITORY := $(shell sed -n 's/^repository = "\(.*\)"$$/\1/p' Cargo.toml)
TETHER_GO_MODULE := $(patsubst https://%,%,$(TETHER_REPOSITORY))/ffi/go
# While the version is 0.x a minor release may change the ABI: the SONAME (ffi/build.rs) is
# libtether.so.<major>.<minor>.
TETHER_ABI := $(word 1,$(subst ., ,$(TETHER_VERSION))).$(word 2,$(subst ., ,$(TETHER_VERSION)))

INSTALL_DIR = $(DESTDIR)$(PREFIX)
# The prefix the in-tree Go tests and test-install build against, installed by `make install`.
INSTALL_STAGE := $(CARGO_OUT)/tether-prefix
FFI_BUILD_LOG := $(CARGO_OUT)/tether-ffi-build.log

# pkg-config and readelf are all the install steps need beyond the toolchains.
install-tools:
	@command -v pkg-config >/dev/null && command -v readelf >/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pkgconf binutils; }

# Libs.private is what rustc prints for the archive it just linked, not a list kept by hand.
install:
	@case "$(PREFIX)" in /*) ;; *) echo "PREFIX must be an absolute path, not '$(PREFIX)'" >&2; exit 1;; esac
	mkdir -p $(CARGO_OUT)
	$(CARGO) rustc -p tether-ffi --release --locked --lib $(FFI_FEATURES) -- --print native-static-libs 2>&1 \
		| tee $(FFI_BUILD_LOG)
	libs=$$(sed -n 's/^note: native-static-libs: //p' $(FFI_BUILD_LOG) | tail -n 1); \
	test -n "$$libs" || { echo "rustc printed no native-static-libs line (see $(FFI_BUILD_LOG))" >&2; exit 1; }; \
	install -d $(INSTALL_DIR)/lib/pkgconfig $(INSTALL_DIR)/include; \
	install -m 0755 $(CARGO_OUT)/release/libtether.so $(INSTALL_DIR)/lib/libtether.so.$(TETHER_VERSION); \
	ln -sfn libtether.so.$(TETHER_VERSION) $(INSTALL_DIR)/lib/libtether.so.$(TETHER_ABI); \
	ln -sfn libtether.so.$(TETHER_ABI) $(INSTALL_DIR)/lib/libtether.so; \
	install -m 0644 $(CARGO_OUT)/release/libtether.a $(INSTALL_DIR)/lib/libtether.a; \
	install -m 0644 include/tether.h $(INSTALL_DIR)/include/tether.h; \
	sed -e 's|@PREFIX@|$(PREFIX)|' -e "s|@LIBS_PRIVATE@|$$libs|" -e 's|@VERSION@|$(TETHER_VERSION)|' \
		-e 's|@REPOSITORY@|$(TETHER_REPOSITORY)|' ffi/tether.pc.in > $(INSTALL_DIR)/lib/pkgconfig/tether.pc
	@echo "installed libtether $(TETHER_VERSION) under $(INSTALL_DIR)"

install-stage:
	$(MAKE) --no-print-directory install PREFIX=$(INSTALL_STAGE) DESTDIR=

# The same layout from the library with the `test-hooks` feature (its own target folder, as
# mk/ffi.mk's), for the Go package's panic-boundary test alone; never installed elsewhere.
INSTALL_HOOKS_STAGE := $(CARGO_OUT)/tether-prefix-hooks
install-stage-hooks:
	$(MAKE) --no-print-directory install PREFIX=$(INSTALL_HOOKS_STAGE) DESTDIR= \
		CARGO_TARGET_DIR=$(CARGO_OUT)/test-hooks FFI_FEATURES="--features test-hooks"

# C: the test program built from the installed prefix with pkg-config alone, shared and static;
# a DESTDIR install lays out the same files for another prefix.
test-install-c: install-stage install-tools
	tests/install/c.sh $(INSTALL_STAGE) $(TETHER_VERSION) $(TETHER_ABI)
	rm -rf $(CARGO_OUT)/tether-destdir
	$(MAKE) --no-print-directory install PREFIX=/opt/tether DESTDIR=$(CARGO_OUT)/tether-destdir
	tests/install/destdir.sh $(CARGO_OUT)/tether-destdir /opt/tether $(TETHER_VERSION) $(TETHER_ABI)

# Go: the module path matches the repository, and a module outside the checkout builds with
# PKG_CONFIG_PATH alone (the package's own -race tests against the same prefix are test-go's).
test-install-go: install-stage install-tools
	@test "$$(cd ffi/go && $(GO) list -m)" = "$(TETHER_GO_MODULE)" || { \
		echo "ffi/go/go.mod's module path is not $(TETHER_GO_MODULE) (Cargo.toml's repository + /ffi/go)" >&2; exit 1; }
	grep -qF 'go get $(TETHER_GO_MODULE)' README.md || { echo "README.md does not say 'go get $(TETHER_GO_MODULE)'" >&2; exit 1; }
	tests/install/go.sh $(INSTALL_STAGE) $(CURDIR)/ffi/go $(TETHER_GO_MODULE) $(TETHER_ABI)

# The Python tools of python/requirements-dist.txt, in their own environment (not the editable
# package's .venv), installed again whenever the pins change.
DIST_VENV := $(CURDIR)/.cache/dist-venv
DIST_TOOLS := $(DIST_VENV)/.tether-dist-tools
DIST_DIR := $(CARGO_OUT)/dist

$(DIST_TOOLS): python/requirements-dist.txt python/requirements-dev.txt
	rm -rf $(DIST_VENV)
	python3 -m venv $(DIST_VENV)
	$(DIST_VENV)/bin/pip install --quiet --disable-pip-version-check -r python/requirements-dist.txt
	cat $^ > $@

# An abi3 wheel for CPython 3.10+, linked by zig against glibc 2.17 (manylinux_2_17), stripped,
# and the sdist. The wheel has its own cargo target folder: linking through zig changes every
# crate's flags, so sharing target/release with `maturin develop` would rebuild both each time.
WHEEL_FLAGS := --strip --zig --compatibility manylinux_2_17
WHEEL_ENV = PATH=$(DIST_VENV)/bin:$$PATH CARGO_TARGET_DIR=$(CARGO_OUT)/wheel

wheel: $(DIST_TOOLS)
	rm -rf $(DIST_DIR)
	cd python && $(WHEEL_ENV) maturin build --release --locked $(WHEEL_FLAGS) --out $(DIST_DIR)
	cd python && $(WHEEL_ENV) maturin sdist --out $(DIST_DIR)

# The sdist is built again into a wheel with the same flags (maturin's PEP 517 backend reads them
# from MATURIN_PEP517_ARGS) and the same cargo folder, so only its own two crates compile. Not
# --locked: the sdist's workspace has only core and python, so cargo drops the other members'
# packages from Cargo.lock (the versions of those it keeps do not change).
test-install-wheel: wheel
	$(WHEEL_ENV) MATURIN_PEP517_ARGS="$(WHEEL_FLAGS)" tests/install/wheel.sh $(DIST_DIR) $(DIST_VENV)

# The image deploy/ runs: tether-csi (release) with the libraries it loads, on an empty base.
IMAGE_NAME := tether-csi:$(TETHER_VERSION)
IMAGE_TAR := $(CARGO_OUT)/image/tether-csi-$(TETHER_VERSION).tar

image:
	$(CARGO) build --release -p tether-driver --bin tether-csi --locked
	driver/image/build.sh $(CARGO_OUT)/release/tether-csi $(IMAGE_NAME) $(IMAGE_TAR)

# containerd and runc (Debian's), for importing and running the image as a node would.
image-runtime-tools:
	@command -v containerd >/dev/null && command -v ctr >/dev/null && command -v runc >/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd runc; }

# chroot and containerd need root, as the driver's other tests do.
test-install-image: image $(GRPCURL) image-runtime-tools
	@images=$$(grep -ho 'image: tether-csi[^ ]*' deploy/*.yaml | sort -u); [ "$$images" = "image: $(IMAGE_NAME)" ] || { \
		echo "deploy/ runs '$$images' but make image builds $(IMAGE_NAME)" >&2; exit 1; }
	tests/install/image.sh $(IMAGE_TAR) $(IMAGE_NAME) $(GRPCURL)
	tests/install/ctr.sh $(IMAGE_TAR) $(IMAGE_NAME)

test-install: test-install-c test-install-go test-install-wheel test-install-image
