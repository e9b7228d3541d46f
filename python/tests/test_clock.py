"""The manual clock: advancing by seconds or timedelta, wall time, and what engines see of it."""

from datetime import datetime, timedelta, timezone

import pytest

import tether

from conftest import START


def test_advance_and_now(clock: tether.ManualClock) -> None:
    assert clock.elapsed == timedelta(0)
    assert clock.now() == START
    clock.advance(1.5)
    clock.advance(timedelta(minutes=1))
    assert clock.elapsed == timedelta(seconds=61.5)
    assert clock.now() == START + timedelta(seconds=61.5)
    clock.advance(0)
    assert clock.elapsed == timedelta(seconds=61.5)
    assert "elapsed" in repr(clock)


def test_default_start_is_now() -> None:
    before = datetime.now(timezone.utc)
    clock = tether.ManualClock()
    assert before - timedelta(seconds=5) <= clock.now() <= datetime.now(timezone.utc) + timedelta(seconds=5)


def test_naive_start_is_refused() -> None:
    with pytest.raises(TypeError):
        tether.ManualClock(datetime(2026, 1, 1))


def test_two_engines_share_one_clock(clock: tether.ManualClock) -> None:
    a = tether.Engine(clock=clock)
    b = tether.Engine(clock=clock)
    a.publish("v", "n")
    a.unpublish("v", "n")
    b.publish("v", "n")
    b.unpublish("v", "n")
    clock.advance(29)
    assert a.is_within_grace_period("v") and b.is_within_grace_period("v")
    clock.advance(1)
    assert not a.is_within_grace_period("v") and not b.is_within_grace_period("v")


def test_clock_must_be_a_manual_clock() -> None:
    with pytest.raises(TypeError):
        tether.Engine(clock=object())  # type: ignore[arg-type]
