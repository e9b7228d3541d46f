"""Fences and admission epochs from Python: who a volume's fence admits after each change, and the
two rules (a target applies only a newer fence; a session needs an admission) that make it one."""

import pytest

import tether
from tether import AccessMode, Admission, PublishKind, UnpublishKind


def admitted(fence: tether.Fence | None) -> list[tuple[str, int]]:
    """The fence's nodes as (node, admission epoch) pairs, primary first."""
    assert fence is not None
    return [(a.node, a.epoch) for a in fence.nodes]


def start_migration(engine: tether.Engine) -> tether.PublishOutcome:
    """vm on node-a (admitted at 1), then migrating to node-b (admitted at 2)."""
    engine.publish("vm", "node-a", AccessMode.RWX)
    return engine.publish("vm", "node-b", AccessMode.RWX)


def test_publish_returns_admission_and_fence(engine: tether.Engine) -> None:
    first = engine.publish("pvc-1", "node-a", readonly=True)
    assert (first.epoch, first.admitted) == (1, 1)
    assert first.fence.epoch == 1
    assert (first.fence.access.mode, first.fence.access.readonly) == (AccessMode.RWO, True)
    assert admitted(first.fence) == [("node-a", 1)]
    assert first.fence == engine.fence("pvc-1")
    attachment = engine.get("pvc-1")
    assert attachment is not None and attachment.admitted == (1,)


def test_idempotent_republish_keeps_the_admission(engine: tether.Engine) -> None:
    started = start_migration(engine)
    again = engine.publish("vm", "node-a", AccessMode.RWX)
    assert again.kind == PublishKind.ALREADY_ATTACHED
    assert (again.epoch, again.admitted) == (2, 1)
    assert again.fence == started.fence


def test_fence_during_migration_admits_both(engine: tether.Engine) -> None:
    started = start_migration(engine)
    assert (started.epoch, started.admitted) == (2, 2)
    assert admitted(started.fence) == [("node-a", 1), ("node-b", 2)]
    assert (started.fence.admission("node-a"), started.fence.admission("node-b")) == (1, 2)
    assert started.fence.admission("node-c") is None
    attachment = engine.get("vm")
    assert attachment is not None
    assert (attachment.nodes, attachment.admitted) == (("node-a", "node-b"), (1, 2))


def test_fence_after_completion_admits_only_the_target(engine: tether.Engine) -> None:
    start_migration(engine)
    done = engine.unpublish("vm", "node-a")
    assert done.kind == UnpublishKind.MIGRATION_COMPLETED
    assert done.fence is not None and done.fence.epoch == done.epoch == 3
    assert admitted(done.fence) == [("node-b", 2)]
    assert engine.fence("vm") == done.fence


def test_fence_after_abort_admits_only_the_source(engine: tether.Engine) -> None:
    start_migration(engine)
    aborted = engine.unpublish("vm", "node-b")
    assert aborted.kind == UnpublishKind.MIGRATION_ABORTED
    assert admitted(aborted.fence) == [("node-a", 1)]
    assert engine.fence("vm") == aborted.fence


def test_fence_after_detach_admits_nobody(engine: tether.Engine) -> None:
    start_migration(engine)
    gone = engine.unpublish("vm")
    assert gone.kind == UnpublishKind.DETACHED
    assert gone.fence is not None and gone.fence.nodes == ()
    assert gone.fence.epoch == 3
    # A detached volume is still tracked: its fence is the empty one, not None.
    assert engine.fence("vm") == gone.fence
    assert engine.unpublish("vm").fence is None


def test_fence_after_handoff_admits_only_the_new_holder(engine: tether.Engine) -> None:
    engine.publish("pvc-1", "node-a")
    engine.unpublish("pvc-1", "node-a")
    late = engine.publish("pvc-1", "node-a")  # the late re-attach, admitted at 3
    out = engine.publish("pvc-1", "node-b")
    assert out.kind == PublishKind.HANDED_OFF
    assert admitted(out.fence) == [("node-b", 4)]
    with pytest.raises(tether.NotAdmitted):
        out.fence.check_session("pvc-1", "node-a", late.admitted)
    out.fence.check_session("pvc-1", "node-b", out.admitted)


def test_stale_clear_and_reconcile_carry_the_fence(engine: tether.Engine, clock: tether.ManualClock) -> None:
    start_migration(engine)
    cleared = engine.clear_stale("vm", "node-b")
    assert cleared.cleared and admitted(cleared.fence) == [("node-a", 1)]
    assert engine.clear_stale("vm", "node-b").fence is None
    engine.publish("pvc-1", "node-gone")
    engine.reconcile([])
    clock.advance(30)
    report = engine.reconcile([])
    by_volume = {c.volume: c for c in report.cleared}
    assert sorted(by_volume) == ["pvc-1", "vm"]
    assert by_volume["pvc-1"].fence.nodes == ()
    assert by_volume["pvc-1"].fence == engine.fence("pvc-1")
    assert by_volume["vm"].fence.epoch == by_volume["vm"].epoch


def test_untracked_volume_has_no_fence(engine: tether.Engine) -> None:
    assert engine.fence("pvc-never") is None
    with pytest.raises(tether.InvalidInput):
        engine.publish("pvc-refused", "")
    assert engine.fence("pvc-refused") is None


def test_a_refused_publish_leaves_the_fence_as_it_was(engine: tether.Engine) -> None:
    engine.publish("vm", "node-a", AccessMode.RWX, readonly=True)
    with pytest.raises(tether.AttachmentConflict):
        engine.publish("vm", "node-b", AccessMode.RWX)  # the target must ask for read-only too
    assert admitted(engine.fence("vm")) == [("node-a", 1)]


def test_target_applies_only_a_newer_fence(engine: tether.Engine) -> None:
    old = engine.publish("pvc-1", "node-a").fence
    new = engine.unpublish("pvc-1", "node-a").fence
    assert new is not None
    old.check_supersedes("pvc-1", None)
    new.check_supersedes("pvc-1", old.epoch)
    for replayed in (old, new):
        with pytest.raises(tether.StaleFence):
            replayed.check_supersedes("pvc-1", new.epoch)


def test_session_needs_an_admission_at_or_above(engine: tether.Engine) -> None:
    fence = start_migration(engine).fence
    fence.check_session("vm", "node-a", 1)
    fence.check_session("vm", "node-b", 2)
    fence.check_session("vm", "node-b", 7)
    with pytest.raises(tether.NotAdmitted):
        fence.check_session("vm", "node-b", 1)
    with pytest.raises(tether.NotAdmitted):
        fence.check_session("vm", "node-c", 2)


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
