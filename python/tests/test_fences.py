"""Fences as Python values: frozen, hashable, their repr and str, made only by the engine.

Who a fence admits after each change, and its two rules, are scenarios of tests/contract/ (test_corpus.py)."""

import pytest

import tether
from tether import AccessMode, Admission


def start_migration(engine: tether.Engine) -> tether.PublishOutcome:
    """vm on node-a (admitted at 1), then migrating to node-b (admitted at 2)."""
    engine.publish("vm", "node-a", AccessMode.RWX)
    return engine.publish("vm", "node-b", AccessMode.RWX)


def test_fences_are_frozen_values(engine: tether.Engine) -> None:
    fence = start_migration(engine).fence
    with pytest.raises(AttributeError):
        fence.epoch = 9  # type: ignore[misc]
    same = engine.fence("vm")
    assert same is not None and same is not fence
    assert same == fence and hash(same) == hash(fence)
    assert {fence, same} == {fence}
    assert isinstance(fence.nodes[0], Admission)
    assert fence.nodes[0] == same.nodes[0] and hash(fence.nodes[0]) == hash(same.nodes[0])
    assert repr(fence) == (
        "Fence(epoch=2, access=Access(mode=AccessMode.RWX, readonly=False), "
        "nodes=(Admission(node='node-a', epoch=1), Admission(node='node-b', epoch=2)))"
    )
    assert str(fence) == 'fence at epoch 2 (RWX): "node-a" admitted at 1, "node-b" admitted at 2'
    assert str(fence.access) == "RWX"
    assert "fence=Fence(epoch=2" in repr(engine.publish("vm", "node-a", "RWX"))
    with pytest.raises(TypeError):
        tether.Fence()  # made only by the engine


def test_term_is_read_only_and_bounded(engine: tether.Engine) -> None:
    assert tether.MAX_TERM == 2**32 - 1
    with pytest.raises(AttributeError):
        engine.term = 9  # type: ignore[misc]
