"""Every exception of DESIGN.md's table with its attributes, and hostile inputs."""

import json
from datetime import timedelta
from typing import Any

import pytest

import tether
from tether import AccessMode


def test_hierarchy() -> None:
    for cls in (
        tether.InvalidInput,
        tether.AttachmentConflict,
        tether.IncompatibleAttachment,
        tether.MigrationLimit,
        tether.MigrationTimedOut,
        tether.SnapshotError,
    ):
        assert issubclass(cls, tether.TetherError)
        assert cls.__module__ == "tether"
    assert issubclass(tether.InvalidInput, ValueError)
    assert not issubclass(tether.AttachmentConflict, ValueError)


def test_conflict_attributes(engine: tether.Engine) -> None:
    engine.publish("pvc-1", "node-a")
    with pytest.raises(tether.AttachmentConflict) as e:
        engine.publish("pvc-1", "node-b")
    assert (e.value.volume, e.value.node, e.value.attached_to) == ("pvc-1", "node-b", ("node-a",))
    assert 'unpublish it from node "node-a" first' in str(e.value)


def test_conflict_rwx_against_rwo(engine: tether.Engine) -> None:
    engine.publish("vm", "node-a", AccessMode.RWX)
    with pytest.raises(tether.AttachmentConflict) as e:
        engine.publish("vm", "node-b", AccessMode.RWO)
    assert e.value.attached_to == ("node-a",)


def test_incompatible_attributes(engine: tether.Engine) -> None:
    engine.publish("pvc-1", "node-a")
    with pytest.raises(tether.IncompatibleAttachment) as e:
        engine.publish("pvc-1", "node-a", readonly=True)
    assert (e.value.volume, e.value.node, e.value.existing, e.value.requested) == (
        "pvc-1",
        "node-a",
        "RWO",
        "RWO read-only",
    )


def test_migration_limit_attributes(engine: tether.Engine) -> None:
    engine.publish("vm", "node-a", "RWX")
    engine.publish("vm", "node-b", "RWX")
    with pytest.raises(tether.MigrationLimit) as e:
        engine.publish("vm", "node-c", "RWX")
    assert (e.value.volume, e.value.node, e.value.nodes) == ("vm", "node-c", ("node-a", "node-b"))


def test_migration_timed_out_attributes(engine: tether.Engine, clock: tether.ManualClock) -> None:
    engine.publish("vm", "node-a", "RWX")
    engine.publish("vm", "node-b", "RWX", migration_timeout=30)
    clock.advance(45)
    with pytest.raises(tether.MigrationTimedOut) as e:
        engine.publish("vm", "node-c", "RWX")
    assert (e.value.volume, e.value.node, e.value.nodes) == ("vm", "node-c", ("node-a", "node-b"))
    assert (e.value.elapsed, e.value.timeout) == (timedelta(seconds=45), timedelta(seconds=30))


@pytest.mark.parametrize(
    "doc",
    [
        "",
        "{",
        "[]",
        "[" * 100_000,
        '{"version": 1, "taken_at_unix_nanos": 0, "volumes": [{"volume": "\\u0000", "epoch": 0}], "missing_nodes": []}',
        '{"version": 1, "taken_at_unix_nanos": 0, "volumes": [], "missing_nodes": [], "extra": 1}',
        '{"version": 99, "taken_at_unix_nanos": 0, "volumes": [], "missing_nodes": []}',
        json.dumps(
            {
                "version": 1,
                "taken_at_unix_nanos": 0,
                "volumes": [
                    {
                        "volume": "v",
                        "epoch": 1,
                        "attachment": {"mode": "RWO", "readonly": False, "nodes": ["a", "b"], "since_unix_nanos": 0},
                    }
                ],
                "missing_nodes": [],
            }
        ),
    ],
)
def test_bad_snapshot_leaves_state(engine: tether.Engine, doc: str) -> None:
    engine.publish("pvc-1", "node-a")
    before = engine.snapshot_json()
    with pytest.raises(tether.SnapshotError):
        engine.restore(doc)
    assert engine.snapshot_json() == before


def test_bad_snapshot_dict(engine: tether.Engine) -> None:
    with pytest.raises(tether.SnapshotError, match="version 2 is not supported"):
        engine.restore({"version": 2})
    with pytest.raises(TypeError):
        engine.restore({"version": object()})


@pytest.mark.parametrize(
    ("volume", "node", "field"),
    [
        ("", "node-a", "volume id"),
        ("pvc\x00evil", "node-a", "volume id"),
        ("v" * 129, "node-a", "volume id"),
        ("pvc-1", "", "node id"),
        ("pvc-1", "node\x00", "node id"),
        ("pvc-1", "n" * 10_000_000, "node id"),
    ],
)
def test_invalid_ids(engine: tether.Engine, volume: str, node: str, field: str) -> None:
    with pytest.raises(tether.InvalidInput) as e:
        engine.publish(volume, node)
    assert e.value.field == field
    assert isinstance(e.value, ValueError)
    assert engine.list() == []
    assert engine.stats()["invalid_input"] == 1


def test_ids_at_the_limit_are_fine(engine: tether.Engine) -> None:
    volume = "é" * 64  # 128 bytes of UTF-8
    assert engine.publish(volume, "n" * tether.MAX_ID_LEN).epoch == 1
    with pytest.raises(tether.InvalidInput):
        engine.publish("é" * 65, "node-a")


@pytest.mark.parametrize("bad", [1, None, b"pvc-1", ["pvc-1"], 3.5])
def test_non_str_ids_are_type_errors(engine: tether.Engine, bad: Any) -> None:
    with pytest.raises(TypeError):
        engine.publish(bad, "node-a")
    not_a_node: Any = bad if bad is not None else 7
    with pytest.raises(TypeError):
        engine.unpublish("pvc-1", not_a_node)
    with pytest.raises(TypeError):
        engine.is_within_grace_period(bad)
    assert engine.list() == []


def test_lone_surrogate_is_a_value_error(engine: tether.Engine) -> None:
    with pytest.raises(UnicodeEncodeError):
        engine.publish("pvc-\ud800", "node-a")


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), timedelta(seconds=-5), 1e30])
def test_bad_durations(engine: tether.Engine, clock: tether.ManualClock, bad: Any) -> None:
    with pytest.raises(tether.InvalidInput) as e:
        engine.publish("vm", "node-a", "RWX", migration_timeout=bad)
    assert e.value.field == "migration timeout"
    with pytest.raises(tether.InvalidInput):
        engine.is_within_grace_period("vm", bad)
    with pytest.raises(tether.InvalidInput):
        tether.Engine(grace_period=bad)
    with pytest.raises(tether.InvalidInput):
        clock.advance(bad)
    assert engine.get("vm") is None


def test_grace_period_above_an_hour_is_refused() -> None:
    with pytest.raises(tether.InvalidInput) as e:
        tether.Engine(grace_period=timedelta(hours=2))
    assert e.value.field == "grace period"


def test_bad_mode(engine: tether.Engine) -> None:
    with pytest.raises(tether.InvalidInput) as e:
        engine.publish("pvc-1", "node-a", "RWM")
    assert e.value.field == "access mode"
    with pytest.raises(TypeError):
        engine.publish("pvc-1", "node-a", 1)  # type: ignore[arg-type]


def test_reconcile_refuses_a_str_and_bad_names(engine: tether.Engine) -> None:
    engine.publish("pvc-1", "node-a")
    with pytest.raises(TypeError):
        engine.reconcile("node-a")
    with pytest.raises(TypeError):
        engine.reconcile(["node-a", 3])  # type: ignore[list-item]
    with pytest.raises(tether.InvalidInput):
        engine.reconcile(["node-a", ""])
    assert engine.stats()["reconciles"] == 0
