# The Python package `tether` (python/): a virtual environment with the pinned tools of
# python/requirements-dev.txt, the extension built and installed by maturin, then pytest
# (warnings are errors; the contract corpus first), mypy --strict on the package, stubs and tests, and stubtest.
.PHONY: test-python python-dev bench-python

TEST_STEPS += test-python

PY_VENV := $(CURDIR)/.venv
PY := $(PY_VENV)/bin/python
# Rewritten whenever the pins change, so the install runs once per change of the pins.
PY_TOOLS := $(PY_VENV)/.tether-dev-tools

$(PY_TOOLS): python/requirements-dev.txt
	test -x $(PY) || python3 -m venv $(PY_VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r python/requirements-dev.txt
	cp python/requirements-dev.txt $@

# Cargo rebuilds only what changed; maturin then reinstalls the editable package.
python-dev: $(PY_TOOLS)
	cd python && VIRTUAL_ENV=$(PY_VENV) $(PY_VENV)/bin/maturin develop --release --locked --quiet

# The contract corpus first, one line per scenario (tests/contract/), then the rest of the suite.
test-python: python-dev
	cd python && $(PY) -m pytest -W error -v tests/test_corpus.py
	cd python && $(PY) -m pytest -W error -q --ignore=tests/test_corpus.py
	cd python && $(PY) -m mypy --strict tether tests
	cd python && $(PY) -m mypy.stubtest tether

bench-python: python-dev
	$(PY) benches/python/bench.py
