#!/usr/bin/env bash
# The wheel and the sdist as a user gets them: auditwheel confirms the wheel's manylinux tag,
# twine accepts both, the sdist builds the same wheel, and the wheel, installed with
# `pip install --no-index` into a new virtual environment, passes the Python test suite run from
# a folder outside the source tree, so the tests import the installed package, not the sources.
# Usage: tests/install/wheel.sh DIST_DIR TOOLS_VENV, with the tools on PATH and MATURIN_PEP517_ARGS
# set to the flags the wheel was built with (mk/install.mk does both).
set -euo pipefail
dist=$(realpath "$1") tools=$(realpath "$2")
repo=$(realpath "$(dirname "$0")/../..")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "test-install-wheel: $*" >&2; exit 1; }

wheels=("$dist"/tether-*.whl) sdists=("$dist"/tether-*.tar.gz)
[ ${#wheels[@]} = 1 ] && [ -f "${wheels[0]}" ] || fail "expected one wheel in $dist, found: ${wheels[*]}"
[ ${#sdists[@]} = 1 ] && [ -f "${sdists[0]}" ] || fail "expected one sdist in $dist, found: ${sdists[*]}"
wheel=${wheels[0]}

tag=$("$tools/bin/auditwheel" show "$wheel" | tr -d '\n' | grep -o 'platform tag: *"manylinux_[^"]*"' | grep -o 'manylinux_[^"]*') \
	|| fail "auditwheel found no manylinux tag for $wheel"
case $(basename "$wheel") in *-cp310-abi3-*"$tag"*.whl) ;; *) fail "$(basename "$wheel") is not a cp310-abi3 wheel tagged $tag";; esac
echo "auditwheel: $(basename "$wheel") is $tag"
"$tools/bin/twine" --no-color check --strict "$wheel" "${sdists[0]}"

# The sdist is what pip builds where no wheel fits: it must build, into the same wheel name.
"$tools/bin/pip" wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation \
	--wheel-dir "$work/from-sdist" "${sdists[0]}"
[ -f "$work/from-sdist/$(basename "$wheel")" ] || fail "the sdist built $(ls "$work/from-sdist"), not $(basename "$wheel")"
echo "sdist: $(basename "${sdists[0]}") builds $(basename "$wheel")"

python3 -m venv "$work/venv"
py=$work/venv/bin/python
# The suite's tools (pytest, hypothesis) at the development pins; the package itself from the
# wheel alone.
"$py" -m pip install --quiet --disable-pip-version-check -c "$repo/python/requirements-dev.txt" pytest hypothesis
"$py" -m pip install --quiet --disable-pip-version-check --no-index "$wheel"

# The suite, the README its example test reads and the contract corpus its corpus test runs,
# laid out as in the tree, but elsewhere.
mkdir -p "$work/suite" "$work/tests"
cp -r "$repo/python/tests" "$work/suite/tests"
cp "$repo/README.md" "$work/README.md"
cp -r "$repo/tests/contract" "$work/tests/contract"
cd "$work/suite"
where=$("$py" -c 'import tether; print(tether.__file__)')
case $where in "$work/venv/"*) ;; *) fail "tether was imported from $where, not from the installed wheel";; esac
"$py" -m pytest -W error -q -p no:cacheprovider --strict-markers tests
