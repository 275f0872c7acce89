"""Clocks: aware UTC always; the fixed clock moves only when told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from engine.clock import Clock, FixedClock, SystemClock, as_utc

START = datetime(2024, 5, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))


def test_system_clock_is_aware_utc() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert isinstance(SystemClock(), Clock)


def test_fixed_clock_stands_still_until_moved() -> None:
    clock = FixedClock(START)
    assert isinstance(clock, Clock)
    assert clock.now() == START and clock.now().tzinfo is UTC
    assert clock.now() == clock.now()
    assert clock.advance(timedelta(hours=2)) == START + timedelta(hours=2)
    assert clock.now() == START + timedelta(hours=2)
    assert clock.set(START - timedelta(days=1)) == START - timedelta(days=1)
    assert clock.now().tzinfo is UTC


def test_fixed_clock_refuses_naive_and_backwards_advance() -> None:
    with pytest.raises(ValueError, match="naive"):
        FixedClock(datetime(2024, 1, 1))
    clock = FixedClock(START)
    with pytest.raises(ValueError, match="naive"):
        clock.set(datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="negative"):
        clock.advance(timedelta(seconds=-1))


def test_as_utc() -> None:
    assert as_utc(START) == datetime(2024, 5, 1, 1, 0, tzinfo=UTC)
    assert as_utc(START).tzinfo is UTC
