"""A state's deadline and timer rows on a given definition, counted from when the
case entered the state: what entering it would have written, had that definition
been the case's from the start."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection

from engine.cases.records import Change
from engine.definitions import Deadline, Workflow
from engine.timers.schedule import TimerSchedule

__all__ = ["deadline_from", "state_deadline"]


def _entered(
    case_id: str,
    unit: str,
    data: dict[str, Any],
    wf: Workflow,
    state: str,
    at: dt.datetime,
    seq: int,
) -> Change:
    return Change(
        case_id=case_id,
        workflow=wf,
        definition_id=0,  # not written: the rows are computed, never inserted as they are
        unit=unit,
        actor="system",
        trigger="migrated",
        transition=None,
        from_state=None,
        to_state=state,
        data=data,
        payload={},
        at=at,
        seq=seq,
    )


def deadline_from(
    conn: Connection,
    schedule: TimerSchedule,
    *,
    case_id: str,
    unit: str,
    data: dict[str, Any],
    wf: Workflow,
    state: str,
    entered_at: dt.datetime,
) -> dt.datetime | None:
    """The deadline *state* of *wf* sets for a stay that began at *entered_at*; None
    when the state has none (or its ``until`` field is empty)."""
    if not wf.has_state(state):
        return None
    spec = wf.state(state)
    if spec.deadline is None or spec.final:
        return None
    tz = wf.timezone or schedule.default_timezone
    change = _entered(case_id, unit, data, wf, state, entered_at, 0)
    return schedule.deadline_at(conn, change, spec.deadline, tz)


def state_deadline(
    conn: Connection,
    schedule: TimerSchedule,
    row: Any,
    d: Deadline,
    wf: Workflow,
    state: str,
    tz: str,
) -> tuple[dt.datetime, list[dict[str, Any]]] | None:
    """(deadline, timer rows) of *state* under *d* for the open case *row* in it since
    ``row.state_entered_at``; None when the rule gives no deadline (an ``until``
    field the case has not filled)."""
    change = _entered(
        row.id, row.unit_code, row.data, wf, state, row.state_entered_at, row.revision + 1
    )
    deadline = schedule.deadline_at(conn, change, d, tz)
    if deadline is None:
        return None
    return deadline, schedule.rows(change, d, deadline, tz)
