"""forget: a volume's record (epoch, detach record) outlives its attachment until it is forgotten,
and a volume made again under a forgotten name never gets an epoch back."""

import pytest

import tether


def test_forget_a_detached_volume(engine: tether.Engine) -> None:
    engine.publish("pvc-1", "node-a")
    engine.unpublish("pvc-1")
    assert engine.detach_timestamp("pvc-1") is not None
    assert engine.forget("pvc-1") is True
    assert engine.fence("pvc-1") is None
    assert engine.detach_timestamp("pvc-1") is None
    assert engine.epoch("pvc-1") == 0
    assert engine.forget("pvc-1") is False
    assert engine.forget("pvc-never") is False
    assert engine.stats()["forgotten"] == 1


def test_an_attached_volume_is_not_forgotten(engine: tether.Engine) -> None:
    engine.publish("pvc-1", "node-a")
    with pytest.raises(tether.VolumeStillAttached):
        engine.forget("pvc-1")
    attachment = engine.get("pvc-1")
    assert attachment is not None and attachment.nodes == ("node-a",)
    assert engine.stats()["forgotten"] == 0


def test_a_recreated_volume_starts_above_the_forgotten_epoch(engine: tether.Engine) -> None:
    engine.publish("pvc-1", "node-a")
    last = engine.unpublish("pvc-1").epoch
    assert last == 2
    engine.forget("pvc-1")
    again = engine.publish("pvc-1", "node-b")
    assert again.epoch > last
    assert again.fence.epoch == again.admitted == again.epoch
