"""Shared fixtures: an engine on a manual clock whose wall time is fixed, so every test is deterministic."""

from datetime import datetime, timezone

import pytest

import tether

START = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def clock() -> tether.ManualClock:
    return tether.ManualClock(START)


@pytest.fixture
def engine(clock: tether.ManualClock) -> tether.Engine:
    return tether.Engine(grace_period=30.0, migration_timeout=300.0, clock=clock)
