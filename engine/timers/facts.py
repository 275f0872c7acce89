"""Overdue facts: what assessment counts — a passed deadline (rung NULL) or a rung."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert

from engine.store.tables import overdue_facts

__all__ = ["overdue_row", "record_overdue", "record_overdue_many"]


def overdue_row(timer: Any, unit_code: str, level: int, now: dt.datetime) -> dict[str, Any]:
    """The overdue fact of the timer row *timer* (a deadline or a rung) as a row."""
    return {
        "case_id": timer.case_id,
        "unit_code": unit_code,
        "state": timer.state,
        "deadline_at": timer.deadline_at,
        "rung": timer.rung,
        "level": level,
        "recorded_at": now,
        "timer_id": timer.id,
    }


def record_overdue(
    conn: Connection, timer: Any, unit_code: str, level: int, now: dt.datetime
) -> None:
    conn.execute(insert(overdue_facts).values(**overdue_row(timer, unit_code, level, now)))


def record_overdue_many(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert the facts made by :func:`overdue_row` in one ``executemany``."""
    if rows:
        conn.execute(insert(overdue_facts), list(rows))
