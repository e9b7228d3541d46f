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
        tether.EpochExhausted,
        tether.VolumeStillAttached,
        tether.StaleFence,
        tether.NotAdmitted,
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


def attached_at(epoch: int, term: int = 0) -> dict[str, Any]:
    """A version 2 document: volume "v" on node-a, admitted at `epoch`."""
    return {
        "version": 2,
        "taken_at_unix_nanos": 0,
        "term": term,
        "volumes": [
            {
                "volume": "v",
                "epoch": epoch,
                "attachment": {
                    "mode": "RWO", "readonly": False, "nodes": ["node-a"], "admitted": [epoch], "since_unix_nanos": 0
                },
            }
        ],
        "missing_nodes": [],
    }


def test_epoch_exhausted_attributes(engine: tether.Engine) -> None:
    last = 2**64 - 2  # the highest epoch issued: u64::MAX itself never is
    with pytest.raises(tether.SnapshotError, match="cannot grow"):
        engine.restore(attached_at(last))  # a document at the last epoch is refused
    engine.restore(attached_at(last - 1))
    engine.unpublish("v", "node-a")  # detached at the last epoch
    before = engine.snapshot_json()
    with pytest.raises(tether.EpochExhausted) as e:
        engine.publish("v", "node-a")
    assert (e.value.volume, e.value.epoch) == ("v", last)
    assert "cannot grow any further" in str(e.value)
    assert engine.snapshot_json() == before
    engine.set_term(1)
    assert engine.refence() == []  # an epoch that cannot grow is left out, not reset
    assert engine.epoch("v") == last
    assert engine.stats()["epoch_exhausted"] == 1


def test_still_attached_attributes(engine: tether.Engine) -> None:
    engine.publish("vm", "node-a", "RWX")
    engine.publish("vm", "node-b", "RWX")
    with pytest.raises(tether.VolumeStillAttached) as e:
        engine.forget("vm")
    assert (e.value.volume, e.value.nodes) == ("vm", ("node-a", "node-b"))
    assert "unpublish it from every node before forgetting it" in str(e.value)
    assert engine.epoch("vm") == 2


def test_stale_fence_attributes(engine: tether.Engine) -> None:
    fence = engine.publish("pvc-1", "node-a").fence
    with pytest.raises(tether.StaleFence) as e:
        fence.check_supersedes("pvc-1", 5)
    assert (e.value.volume, e.value.epoch, e.value.applied) == ("pvc-1", 1, 5)
    assert "only a higher epoch may replace it" in str(e.value)


def test_not_admitted_attributes(engine: tether.Engine) -> None:
    engine.publish("vm", "node-a", "RWX")
    fence = engine.publish("vm", "node-b", "RWX").fence
    with pytest.raises(tether.NotAdmitted) as below:
        fence.check_session("vm", "node-b", 1)
    assert (below.value.volume, below.value.node, below.value.presented) == ("vm", "node-b", 1)
    assert (below.value.admitted, below.value.fence_epoch) == (2, 2)
    assert "admitted it at epoch 2, above the epoch presented" in str(below.value)
    with pytest.raises(tether.NotAdmitted) as outside:
        fence.check_session("vm", "node-c", 2)
    assert (outside.value.node, outside.value.admitted) == ("node-c", None)
    assert "does not admit it" in str(outside.value)


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
        json.dumps(attached_at(2**64 - 1)),
        json.dumps(attached_at(5, term=2**32)),
        json.dumps({**attached_at(5), "volumes": [{**attached_at(5)["volumes"][0], "epoch": 4}]}),
    ],
)
def test_bad_snapshot_leaves_state(engine: tether.Engine, doc: str) -> None:
    engine.publish("pvc-1", "node-a")
    before = engine.snapshot_json()
    with pytest.raises(tether.SnapshotError):
        engine.restore(doc)
    assert engine.snapshot_json() == before


def test_bad_snapshot_dict(engine: tether.Engine) -> None:
    with pytest.raises(tether.SnapshotError, match="version 3 is not supported"):
        engine.restore({"version": 3})
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


@pytest.mark.parametrize(
    ("volume", "field"),
    [("", "volume id"), ("pvc\x00evil", "volume id"), ("v" * 129, "volume id")],
)
def test_fence_and_forget_refuse_bad_ids(engine: tether.Engine, volume: str, field: str) -> None:
    for call in (engine.fence, engine.forget):
        with pytest.raises(tether.InvalidInput) as e:
            call(volume)
        assert e.value.field == field
    assert engine.stats()["invalid_input"] == 2


@pytest.mark.parametrize("bad", [None, 1, b"pvc-1"])
def test_fence_and_forget_take_only_str(engine: tether.Engine, bad: Any) -> None:
    with pytest.raises(TypeError):
        engine.fence(bad)
    with pytest.raises(TypeError):
        engine.forget(bad)


@pytest.mark.parametrize(
    ("term", "wording"),
    [
        (2**32, "it is 4294967296; the limit is 4294967295"),
        (2**64, "it is 18446744073709551616; the limit is 4294967295"),
        (-1, "it is -1; give a non-negative integer"),
    ],
)
def test_out_of_range_terms(engine: tether.Engine, term: int, wording: str) -> None:
    engine.set_term(7)
    with pytest.raises(tether.InvalidInput) as e:
        engine.set_term(term)
    assert e.value.field == "term"
    assert str(e.value) == f"invalid term: {wording}"
    assert engine.term == 7


@pytest.mark.parametrize("bad", [True, 1.0, "1", None])
def test_terms_are_ints(engine: tether.Engine, bad: Any) -> None:
    with pytest.raises(TypeError):
        engine.set_term(bad)
    assert engine.term == 0


def test_fence_rules_take_non_negative_epochs(engine: tether.Engine) -> None:
    fence = engine.publish("pvc-1", "node-a").fence
    with pytest.raises(tether.InvalidInput) as e:
        fence.check_session("pvc-1", "node-a", -1)
    assert e.value.field == "presented epoch"
    with pytest.raises(tether.InvalidInput):
        fence.check_supersedes("pvc-1", 2**64)
    with pytest.raises(TypeError):
        fence.check_supersedes("pvc-1", "0")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fence.check_session("pvc-1", "node-a", False)
    assert fence.admission("node\x00") is None  # a lookup: nothing is refused or recorded
