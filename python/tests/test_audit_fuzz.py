"""The audit's cluster-dump parser on generated and mutated dumps: it answers 0, 1, or 2 with one
line on stderr, and never a traceback."""

import io
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tether.audit import main
from test_audit import NOW, healthy_cluster, kube_list, volume_attachment

# Deterministic and leaving no example database in the tree: the same examples on every run.
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


def audit(raw: bytes) -> tuple[int, str, str]:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "cluster.json"
        path.write_bytes(raw)
        out, err = io.StringIO(), io.StringIO()
        status = main(["audit", str(path), "--now", NOW], out=out, err=err)
        return status, out.getvalue(), err.getvalue()


def answered(raw: bytes) -> None:
    status, out, err = audit(raw)
    assert status in (0, 1, 2)
    if status == 2:
        assert out == "" and err.count("\n") == 1 and err.startswith("tether audit: "), err
        assert "Traceback" not in err


def dump() -> dict[str, Any]:
    return kube_list(*healthy_cluster(), volume_attachment("csi-x", "pvc-db", "worker-2", NOW))


@FUZZ
@given(json_values)
def test_generated_documents(doc: Any) -> None:
    answered(json.dumps(doc).encode())


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10_000), json_values), min_size=1, max_size=4))
def test_mutated_dumps(mutations: list[tuple[int, Any]]) -> None:
    """A real dump with values deep inside replaced by anything."""
    doc = dump()
    for where, value in mutations:
        node: Any = doc
        path: list[Any] = []
        while isinstance(node, (dict, list)) and node:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            key = keys[where % len(keys)]
            path.append((node, key))
            where //= len(keys) + 1
            node = node[key]
            if where == 0:
                break
        if path:
            parent, key = path[-1]
            parent[key] = value
    answered(json.dumps(doc).encode())


@FUZZ
@given(st.binary(max_size=64), st.integers(0, 4000))
def test_damaged_bytes(noise: bytes, at: int) -> None:
    raw = json.dumps(dump()).encode()
    at %= len(raw)
    answered(raw[:at] + noise + raw[at + len(noise):])
