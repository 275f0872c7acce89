"""Durable timers: rows written with state changes, fired by a sweep loop.

TimerSchedule   effects hook: entering a state writes its timer rows, leaving cancels them
TimerService    the sweep: claim due rows, fire each with its effects, in one transaction
                (each in its own savepoint: a failing timer is recorded, never stops the rest)
TimerLedger     reading and re-arming rows: case show, timers list, timers retry
RetryPolicy     when a failed timer is tried again (backoff, max attempts)
SweepLoop       sleeps until the next due timer or a commit's wake-up, then sweeps
                (its wake-up, engine/timers/wake.py: a commit here writing a timer due sooner)
TimerRecompute  pending working-day timers recomputed when the calendar data changes
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.process import worker_id
    from engine.timers.loop import SweepLoop, TimerLoop
    from engine.timers.recompute import Recomputed, TimerRecompute
    from engine.timers.schedule import TimerSchedule
    from engine.timers.sweep import Fired, TimerService

__all__ = [
    "Fired",
    "Recomputed",
    "SweepLoop",
    "TimerLoop",
    "TimerRecompute",
    "TimerSchedule",
    "TimerService",
    "worker_id",
]

# Imported on first use, so a module of the package (engine.timers.retry, which the
# settings read) does not bring the sweep, SQLAlchemy and APScheduler with it.
_WHERE = {
    "Fired": "engine.timers.sweep",
    "Recomputed": "engine.timers.recompute",
    "SweepLoop": "engine.timers.loop",
    "TimerLoop": "engine.timers.loop",
    "TimerRecompute": "engine.timers.recompute",
    "TimerSchedule": "engine.timers.schedule",
    "TimerService": "engine.timers.sweep",
    "worker_id": "engine.process",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
