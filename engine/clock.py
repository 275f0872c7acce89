"""Time, injected: engine code asks a :class:`Clock`, never the wall clock.

``SystemClock`` is the production clock; ``FixedClock`` is the virtual clock
for tests and simulations — it stands still until it is advanced or set.
Every datetime crossing these APIs is timezone-aware and in UTC.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FixedClock", "SystemClock", "as_utc"]


def as_utc(value: datetime) -> datetime:
    """*value* converted to UTC; a naive datetime is refused (its zone is unknown)."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no time zone; use an aware one")
    return value.astimezone(UTC)


@runtime_checkable
class Clock(Protocol):
    """Source of the current time."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock:
    """A clock that only moves when told to (thread-safe)."""

    def __init__(self, at: datetime) -> None:
        self._now = as_utc(at)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by *delta* (never backwards) and return the new time."""
        if delta < timedelta(0):
            raise ValueError(f"a clock cannot advance by a negative amount ({delta})")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, at: datetime) -> datetime:
        """Jump to *at* (either direction) and return it."""
        moved = as_utc(at)
        with self._lock:
            self._now = moved
            return moved

    def __repr__(self) -> str:
        return f"FixedClock({self.now().isoformat()})"
