"""Read-side calls, settings, counters, reconcile and snapshot/restore."""

from datetime import datetime, timedelta

import pytest

import tether
from tether import AccessMode

from conftest import START


def test_grace_period_and_detach_record(engine: tether.Engine, clock: tether.ManualClock) -> None:
    assert not engine.is_within_grace_period("pvc-1")
    assert engine.detach_timestamp("pvc-1") is None
    engine.publish("pvc-1", "node-a")
    clock.advance(10)
    engine.unpublish("pvc-1", "node-a")
    clock.advance(4)
    record = engine.detach_timestamp("pvc-1")
    assert record is not None
    assert record.node == "node-a"
    assert record.at == START + timedelta(seconds=10)
    assert record.age == timedelta(seconds=4)
    assert engine.is_within_grace_period("pvc-1")
    assert engine.is_within_grace_period("pvc-1", 5.0)
    assert not engine.is_within_grace_period("pvc-1", timedelta(seconds=4))
    assert engine.clear_detach_timestamp("pvc-1")
    assert not engine.clear_detach_timestamp("pvc-1")
    assert not engine.is_within_grace_period("pvc-1")


def test_grace_check_default_follows_the_setting(engine: tether.Engine, clock: tether.ManualClock) -> None:
    """The check without a grace period uses the engine's, as set last; a refused setting
    changes nothing."""
    engine.publish("pvc-1", "node-a")
    engine.unpublish("pvc-1", "node-a")
    clock.advance(20)
    assert engine.is_within_grace_period("pvc-1")
    engine.grace_period = 10
    assert not engine.is_within_grace_period("pvc-1")
    with pytest.raises(tether.InvalidInput):
        engine.grace_period = 7200
    assert not engine.is_within_grace_period("pvc-1")
    engine.grace_period = timedelta(seconds=25)
    assert engine.is_within_grace_period("pvc-1")
    assert tether.Engine(grace_period=5, clock=clock).grace_period == timedelta(seconds=5)


def test_get_list_epoch_count(engine: tether.Engine, clock: tether.ManualClock) -> None:
    assert engine.list() == []
    assert engine.epoch("pvc-9") == 0
    engine.publish("pvc-2", "node-b", readonly=True)
    clock.advance(3)
    engine.publish("pvc-1", "node-a", AccessMode.RWX)
    listed = engine.list()
    assert [a.volume for a in listed] == ["pvc-1", "pvc-2"]
    ro = listed[1]
    assert (ro.mode, ro.readonly, ro.nodes, ro.epoch, ro.migration) == (AccessMode.RWO, True, ("node-b",), 1, None)
    assert isinstance(ro.since, datetime)
    assert ro.since == START
    assert listed[0].since == START + timedelta(seconds=3)
    assert engine.attached_count() == 2
    assert engine.get("pvc-2") == ro
    assert "Attachment(volume='pvc-2'" in repr(ro)


def test_migration_status(engine: tether.Engine, clock: tether.ManualClock) -> None:
    engine.publish("vm", "node-a", "RWX")
    engine.publish("vm", "node-b", "RWX", migration_timeout=30)
    clock.advance(31)
    a = engine.get("vm")
    assert a is not None and a.migration is not None
    assert a.migration.elapsed == timedelta(seconds=31)
    assert a.migration.timeout == timedelta(seconds=30)
    assert a.migration.timed_out


def test_snapshot_round_trip(engine: tether.Engine, clock: tether.ManualClock) -> None:
    engine.publish("pvc-1", "node-a")
    engine.unpublish("pvc-1", "node-a")
    engine.publish("vm", "node-a", "RWX")
    engine.publish("vm", "node-b", "RWX")
    text = engine.snapshot_json()
    doc = engine.snapshot()
    assert isinstance(text, str)
    assert doc["version"] == 2
    assert [v["volume"] for v in doc["volumes"]] == ["pvc-1", "vm"]
    assert doc["volumes"][1]["attachment"]["admitted"] == [1, 2]
    for source in (text, doc):
        other = tether.Engine(clock=tether.ManualClock(START))
        other.restore(source)
        assert other.list() == engine.list()
        assert other.epoch("pvc-1") == 2
        assert other.detach_timestamp("pvc-1") == engine.detach_timestamp("pvc-1")
        assert other.fence("vm") == engine.fence("vm")


def test_settings(engine: tether.Engine) -> None:
    assert engine.grace_period == timedelta(seconds=30)
    assert engine.migration_timeout == timedelta(minutes=5)
    engine.grace_period = 10
    engine.migration_timeout = timedelta(seconds=1)
    assert engine.grace_period == timedelta(seconds=10)
    assert engine.migration_timeout == timedelta(seconds=30)
    assert "grace_period=10s" in repr(engine)
    with pytest.raises(tether.InvalidInput):
        engine.grace_period = 7200
    assert engine.grace_period == timedelta(seconds=10)


def test_stats_counts_every_outcome(engine: tether.Engine) -> None:
    stats = engine.stats()
    assert set(stats) >= {"attached", "conflicts", "handed_off", "invalid_input", "active_migrations",
                          "migrations_detached", "migrations_cleared", "refenced", "forgotten", "epoch_exhausted"}
    assert all(v == 0 for v in stats.values())
    engine.publish("pvc-1", "node-a")
    with pytest.raises(tether.AttachmentConflict):
        engine.publish("pvc-1", "node-b")
    stats = engine.stats()
    assert (stats["attached"], stats["conflicts"]) == (1, 1)


def test_default_engine_runs_on_the_system_clock() -> None:
    engine = tether.Engine()
    engine.publish("pvc-1", "node-a")
    a = engine.get("pvc-1")
    assert a is not None and a.since.tzinfo is not None
