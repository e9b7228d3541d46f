# The Go package over the C ABI (ffi/go): go vet, the contract corpus (one line per scenario)
# and the race-enabled tests, linked against the
# static library of a prefix `make install` filled (mk/install.mk), found as users find it, through
# pkg-config; `make bench-go` runs its benchmarks (figures in benches/README.md), with the C-side
# hooks of -tags tether_bench, which users' builds leave out.
.PHONY: test-go go-lib bench-go

TEST_STEPS += test-go

GO ?= go
GO_DIR := ffi/go
# benchstat, for `make bench-go` only; installed under .cache so a fresh clone gets the same one.
BENCHSTAT_VERSION := v0.0.0-20260908200009-22c9c6c9d4da
GO_BIN := $(CURDIR)/.cache/go-bin
BENCH_GO_COUNT ?= 6

# Installed here too (not only by mk/install.mk): the step must stand on its own. Cheap when up
# to date.
go-lib: install-stage

# The package's cgo flags leave out -Werror, so a newer compiler's new warning cannot break a
# user's build; its own tests keep it.
GO_CGO_ENV := CGO_ENABLED=1 CGO_CFLAGS="-g -O2 -Werror"
GO_ENV = PKG_CONFIG_PATH=$(INSTALL_STAGE)/lib/pkgconfig $(GO_CGO_ENV)

# The panic-boundary test needs the library's test hook: it alone runs with -tags tether_test_hooks
# against a prefix of the library built with the `test-hooks` feature (install-stage-hooks).
GO_HOOKS_ENV = PKG_CONFIG_PATH=$(INSTALL_HOOKS_STAGE)/lib/pkgconfig $(GO_CGO_ENV)

# The package hands Go memory to C without copies: the cgocheck2 run, under the strict cgo
# pointer checker, verifies every crossing.
test-go: go-lib install-stage-hooks
	cd $(GO_DIR) && $(GO_ENV) $(GO) vet ./... && $(GO_ENV) $(GO) vet -tags tether_bench ./...
	cd $(GO_DIR) && $(GO_HOOKS_ENV) $(GO) vet -tags tether_test_hooks ./...
	cd $(GO_DIR) && $(GO_ENV) $(GO) test -count=1 -run '^TestCorpus$$' -v . | grep -v '^=== RUN'
	cd $(GO_DIR) && $(GO_ENV) $(GO) test -race -count=1 ./...
	cd $(GO_DIR) && $(GO_ENV) GOEXPERIMENT=cgocheck2 $(GO) test -count=1 .
	cd $(GO_DIR) && $(GO_HOOKS_ENV) $(GO) test -race -count=1 -tags tether_test_hooks -run '^TestLibraryPanicIsAnError$$' -v . \
		| grep -- '--- PASS: TestLibraryPanicIsAnError'

$(GO_BIN)/benchstat:
	GOBIN=$(GO_BIN) $(GO) install golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION)

bench-go: go-lib $(GO_BIN)/benchstat
	cd $(GO_DIR) && $(GO_ENV) $(GO) test -tags tether_bench -run '^$$' -bench . -benchtime 1s -cpu 1,2 -count $(BENCH_GO_COUNT) . \
		> $(CURDIR)/.cache/bench-go.txt
	$(GO_BIN)/benchstat $(CURDIR)/.cache/bench-go.txt
