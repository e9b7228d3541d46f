"""publish and unpublish from Python: every row of DESIGN.md's tables, as outcome objects."""

from datetime import timedelta

import pytest

import tether
from tether import AccessMode, PublishKind, UnpublishKind


def test_attach_then_idempotent(engine: tether.Engine) -> None:
    first = engine.publish("pvc-1", "node-a")
    assert first.kind == PublishKind.ATTACHED
    assert first.epoch == 1
    assert (first.from_node, first.source, first.timeout) == (None, None, None)
    again = engine.publish("pvc-1", "node-a", AccessMode.RWO)
    assert again.kind == PublishKind.ALREADY_ATTACHED
    assert again.epoch == 1


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


def test_rwo_second_node_is_a_conflict(engine: tether.Engine) -> None:
    engine.publish("pvc-1", "node-a")
    with pytest.raises(tether.AttachmentConflict) as refused:
        engine.publish("pvc-1", "node-b")
    assert refused.value.attached_to == ("node-a",)
    assert engine.get("pvc-1") is not None
    assert engine.epoch("pvc-1") == 1


def test_handoff_inside_grace_period(engine: tether.Engine, clock: tether.ManualClock) -> None:
    engine.publish("pvc-1", "node-a")
    engine.unpublish("pvc-1", "node-a")
    engine.publish("pvc-1", "node-a")  # the late re-attach
    clock.advance(5)
    out = engine.publish("pvc-1", "node-b")
    assert out.kind == PublishKind.HANDED_OFF
    assert out.from_node == "node-a"
    attachment = engine.get("pvc-1")
    assert attachment is not None and attachment.nodes == ("node-b",)
    assert engine.stats()["handed_off"] == 1


def test_no_handoff_after_grace_period(engine: tether.Engine, clock: tether.ManualClock) -> None:
    engine.publish("pvc-1", "node-a")
    engine.unpublish("pvc-1", "node-a")
    engine.publish("pvc-1", "node-a")
    clock.advance(timedelta(seconds=30))
    with pytest.raises(tether.AttachmentConflict):
        engine.publish("pvc-1", "node-b")


def test_migration_start_complete(engine: tether.Engine, clock: tether.ManualClock) -> None:
    engine.publish("vm-disk", "node-a", AccessMode.RWX)
    started = engine.publish("vm-disk", "node-b", AccessMode.RWX, migration_timeout=60)
    assert started.kind == PublishKind.MIGRATION_STARTED
    assert started.source == "node-a"
    assert started.timeout == timedelta(seconds=60)
    attachment = engine.get("vm-disk")
    assert attachment is not None and attachment.migration is not None
    assert attachment.nodes == ("node-a", "node-b")
    clock.advance(12)
    done = engine.unpublish("vm-disk", "node-a")
    assert done.kind == UnpublishKind.MIGRATION_COMPLETED
    assert (done.source, done.target, done.nodes) == ("node-a", "node-b", ("node-a",))
    assert done.duration == timedelta(seconds=12)
    assert done.epoch == 3


def test_migration_abort(engine: tether.Engine) -> None:
    engine.publish("vm-disk", "node-a", AccessMode.RWX)
    engine.publish("vm-disk", "node-b", AccessMode.RWX)
    aborted = engine.unpublish("vm-disk", "node-b")
    assert aborted.kind == UnpublishKind.MIGRATION_ABORTED
    assert aborted.nodes == ("node-b",)
    assert aborted.duration is None
    attachment = engine.get("vm-disk")
    assert attachment is not None and attachment.nodes == ("node-a",)


def test_migration_timeout_is_clamped(engine: tether.Engine) -> None:
    engine.publish("vm-disk", "node-a", AccessMode.RWX)
    started = engine.publish("vm-disk", "node-b", AccessMode.RWX, migration_timeout=timedelta(hours=5))
    assert started.timeout == timedelta(hours=1)


def test_unpublish_not_attached_and_all_nodes(engine: tether.Engine) -> None:
    nothing = engine.unpublish("pvc-1", "node-a")
    assert nothing.kind == UnpublishKind.NOT_ATTACHED
    assert (nothing.epoch, nothing.nodes) == (None, ())
    engine.publish("vm-disk", "node-a", "RWX")
    engine.publish("vm-disk", "node-b", "RWX")
    everything = engine.unpublish("vm-disk")
    assert everything.kind == UnpublishKind.DETACHED
    assert everything.nodes == ("node-a", "node-b")
    assert engine.get("vm-disk") is None
    stats = engine.stats()
    assert (stats["active_migrations"], stats["migrations_detached"]) == (0, 1)  # the migration ended once
