"""Controller terms and the re-fence a new leader runs: epochs rise above ``term << 32``, nodes and
admission epochs stay, and the old leader's fences are refused by a target that applied the new ones."""

import pytest

import tether
from tether import AccessMode

TERM = 3


def fences(engine: tether.Engine) -> dict[str, tether.Fence | None]:
    return {a: engine.fence(a) for a in ("pvc-1", "pvc-2", "vm")}


@pytest.fixture
def busy(engine: tether.Engine) -> tether.Engine:
    """pvc-1 on node-a, pvc-2 detached, vm migrating from node-a to node-b."""
    engine.publish("pvc-1", "node-a")
    engine.publish("pvc-2", "node-c")
    engine.unpublish("pvc-2")
    engine.publish("vm", "node-a", AccessMode.RWX)
    engine.publish("vm", "node-b", AccessMode.RWX)
    return engine


def test_term_starts_at_zero_and_never_goes_down(engine: tether.Engine) -> None:
    assert engine.term == 0
    assert engine.set_term(TERM) == TERM
    assert engine.set_term(1) == TERM  # a lower term leaves it as it is
    assert engine.term == TERM
    assert engine.set_term(tether.MAX_TERM) == tether.MAX_TERM == 2**32 - 1
    with pytest.raises(AttributeError):
        engine.term = 9  # type: ignore[misc]


def test_refence_raises_every_epoch_and_keeps_admissions(busy: tether.Engine) -> None:
    before = fences(busy)
    attachments = {a.volume: (a.nodes, a.admitted) for a in busy.list()}
    busy.set_term(TERM)
    refenced = busy.refence()
    assert [v.volume for v in refenced] == ["pvc-1", "pvc-2", "vm"]  # the detached volume too
    for v in refenced:
        assert v.fence.epoch >= TERM << 32
        assert v.fence == busy.fence(v.volume)
        assert busy.epoch(v.volume) == v.fence.epoch
        old = before[v.volume]
        assert old is not None and old.epoch < v.fence.epoch
        assert (v.fence.nodes, v.fence.access) == (old.nodes, old.access)
    assert {a.volume: (a.nodes, a.admitted) for a in busy.list()} == attachments
    assert busy.stats()["refenced"] == 3


def test_old_leaders_fences_are_refused_after_a_refence(busy: tether.Engine) -> None:
    old = fences(busy)
    busy.set_term(TERM)
    for v in busy.refence():
        stale = old[v.volume]
        assert stale is not None
        v.fence.check_supersedes(v.volume, stale.epoch)
        with pytest.raises(tether.StaleFence):
            stale.check_supersedes(v.volume, v.fence.epoch)


def test_sessions_admitted_before_a_refence_still_are(busy: tether.Engine) -> None:
    source = busy.publish("vm", "node-a", "RWX").admitted
    busy.set_term(TERM)
    busy.refence()
    fence = busy.fence("vm")
    assert fence is not None
    fence.check_session("vm", "node-a", source)


def test_changes_after_a_term_issue_epochs_above_it(busy: tether.Engine) -> None:
    busy.set_term(TERM)
    out = busy.publish("pvc-new", "node-a")
    assert out.epoch == out.admitted == TERM << 32
    done = busy.unpublish("vm", "node-a")
    assert done.epoch is not None and done.epoch >= TERM << 32


def test_refence_of_an_empty_engine(engine: tether.Engine) -> None:
    assert engine.refence() == []
    assert engine.stats()["refenced"] == 0


def test_term_survives_a_snapshot(busy: tether.Engine) -> None:
    busy.set_term(TERM)
    busy.refence()
    doc = busy.snapshot()
    assert doc["term"] == TERM
    other = tether.Engine(clock=tether.ManualClock())
    other.restore(doc)
    assert other.term == TERM
    assert fences(other) == fences(busy)
