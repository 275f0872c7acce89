"""Reading and re-arming timer rows: ``case show``, ``timers list``, ``timers retry``.

The sweep (:mod:`engine.timers.sweep`) fires timers; this module only reads
them, and puts a failed one back in the queue when an operator asks.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select, update

from engine.clock import Clock
from engine.errors import TimerNotFailed, UnknownCase, UnknownTimer
from engine.grid.visibility import ADMIN, Viewer, as_viewer, visible_case
from engine.store import connection, transaction
from engine.store.db import read_only
from engine.store.tables import cases, overdue_facts, timers, units
from engine.timers.rungs import rung_level

__all__ = ["STATUSES", "TimerLedger"]

STATUSES = ("pending", "firing", "fired", "cancelled", "failed")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def timer_dict(row: Any) -> dict[str, Any]:
    """One timer row as ``timers list --json`` shows it."""
    return {
        "id": row.id,
        "case": row.case_id,
        "rule": row.rule_id,
        "state": row.state,
        "kind": row.kind,
        "rung": row.rung,
        "level": rung_level(row.rung),
        "status": row.status,
        "due": _iso(row.due_at),
        "deadline": _iso(row.deadline_at),
        "attempts": row.attempts,
        "last_error": row.last_error,
        "next_attempt_at": _iso(row.next_attempt_at),
        "fired_at": _iso(row.fired_at),
        "detail": row.detail,
    }


class TimerLedger:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def describe(self, case_id: str, *, viewer: Viewer | str = ADMIN) -> dict[str, Any]:
        """Pending and failed timers and overdue facts of a case (for ``case show``);
        UnknownCase when *viewer* (not the administrator) does not see the case."""
        t = timers.c
        with connection(read_only(self.engine)) as conn:
            if not as_viewer(viewer).everything:
                seen = conn.execute(
                    select(cases.c.id)
                    .join(units, units.c.code == cases.c.unit_code)
                    .where(cases.c.id == case_id, visible_case(viewer, units.c.path, cases.c.id))
                ).first()
                if seen is None:
                    raise UnknownCase(case_id)
            pending = conn.execute(
                select(t.kind, t.rung, t.due_at)
                .where(t.case_id == case_id, t.status == "pending")
                .order_by(t.due_at, t.id)
            ).all()
            failed = conn.execute(
                select(timers)
                .where(t.case_id == case_id, t.status == "failed")
                .order_by(t.due_at, t.id)
            ).all()
            facts = conn.execute(
                select(overdue_facts)
                .where(overdue_facts.c.case_id == case_id)
                .order_by(overdue_facts.c.id)
            ).all()
        return {
            "timers": [
                {"kind": k, "rung": r, "level": rung_level(r), "due": d.isoformat()}
                for k, r, d in pending
            ],
            "failed_timers": [
                {
                    "id": f.id,
                    "kind": f.kind,
                    "rung": f.rung,
                    "level": rung_level(f.rung),
                    "due": f.due_at.isoformat(),
                    "attempts": f.attempts,
                    "last_error": f.last_error or "",
                    "next_attempt_at": _iso(f.next_attempt_at),
                }
                for f in failed
            ],
            "overdue": [
                {
                    "state": f.state,
                    "deadline": f.deadline_at.isoformat(),
                    "rung": f.rung,
                    "level": f.level,
                    "at": f.recorded_at.isoformat(),
                }
                for f in facts
            ],
        }

    def find(
        self, status: str | None = None, case: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Timers, oldest due first: of one *status* (default: pending and failed), one *case*."""
        t = timers.c
        query = select(timers).order_by(t.due_at, t.id).limit(limit)
        if status is None:
            query = query.where(t.status.in_(("pending", "failed")))
        else:
            query = query.where(t.status == status)
        if case is not None:
            query = query.where(t.case_id == case)
        with connection(read_only(self.engine)) as conn:
            return [timer_dict(row) for row in conn.execute(query)]

    def retry(self, timer_id: int) -> dict[str, Any]:
        """Re-arm a failed timer: pending again, with a fresh count of attempts.

        It fires at the next sweep (its due time has passed), checked against
        its case like any timer: stale if the case has moved on.
        """
        with transaction(self.engine) as conn:
            row = conn.execute(select(timers).where(timers.c.id == timer_id)).one_or_none()
            if row is None:
                raise UnknownTimer(timer_id)
            if row.status != "failed":
                raise TimerNotFailed(timer_id, row.status)
            conn.execute(
                update(timers)
                .where(timers.c.id == timer_id, timers.c.status == "failed")
                .values(status="pending", attempts=0, next_attempt_at=None)
            )
            rearmed = conn.execute(select(timers).where(timers.c.id == timer_id)).one()
        return timer_dict(rearmed)
