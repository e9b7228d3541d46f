"""publish and unpublish outcomes as Python values: frozen, comparable, modes as strings.

The rows of DESIGN.md's tables are scenarios of tests/contract/, run by test_corpus.py."""

import pytest

import tether
from tether import AccessMode, PublishKind


def test_outcomes_are_frozen_and_comparable(engine: tether.Engine) -> None:
    out = engine.publish("pvc-1", "node-a")
    with pytest.raises(AttributeError):
        out.epoch = 7  # type: ignore[misc]
    assert out == engine.publish("pvc-2", "node-a")
    assert "PublishKind.ATTACHED" in repr(out)
    assert hash(PublishKind.ATTACHED) == hash(PublishKind.ATTACHED)
    assert PublishKind.ATTACHED != PublishKind.HANDED_OFF


def test_mode_as_string(engine: tether.Engine) -> None:
    engine.publish("pvc-1", "node-a", "rwx")
    attachment = engine.get("pvc-1")
    assert attachment is not None
    assert attachment.mode == AccessMode.RWX
