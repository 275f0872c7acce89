"""Overdue facts: what assessment counts — a passed deadline (rung NULL) or a rung."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, insert

from engine.store.tables import overdue_facts

__all__ = ["record_overdue"]


def record_overdue(
    conn: Connection, timer: Any, unit_code: str, level: int, now: dt.datetime
) -> None:
    conn.execute(
        insert(overdue_facts).values(
            case_id=timer.case_id,
            unit_code=unit_code,
            state=timer.state,
            deadline_at=timer.deadline_at,
            rung=timer.rung,
            level=level,
            recorded_at=now,
            timer_id=timer.id,
        )
    )
