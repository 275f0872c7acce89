"""What a sweep batch reads and writes: due rows, claimed rows' planned effects, marks.

:mod:`engine.timers.sweep` decides what each timer does; this module holds the
records it fills (:class:`Fired`, :class:`Planned`) and the statements that
read a batch (:func:`due_rows`) and write it (:func:`write`, :func:`mark`),
each a handful of statements whatever the batch's size.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, insert, select, update

from engine.cases.rows import raise_escalation_levels
from engine.store.tables import cases, timers
from engine.timers.facts import record_overdue_many
from engine.timers.rungs import rung_level
from notifications.outbox import enqueue_many

__all__ = ["CASE_COLUMNS", "Batch", "Fired", "Planned", "due_rows", "mark", "write"]


@dataclass(frozen=True)
class Fired:
    timer_id: int
    case: str
    state: str
    kind: str
    rung: int | None
    due: dt.datetime
    fired_at: dt.datetime
    outcome: str  # fired | stale | failed
    detail: str = ""

    @classmethod
    def of(cls, timer: Any, now: dt.datetime, outcome: str, detail: str) -> Fired:
        """What firing the timer row *timer* at *now* came to."""
        return cls(
            timer.id,
            timer.case_id or "",
            timer.state,
            timer.kind,
            timer.rung,
            timer.due_at,
            now,
            outcome,
            detail,
        )

    @property
    def late_seconds(self) -> float:
        return (self.fired_at - self.due).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.timer_id,
            "case": self.case,
            "state": self.state,
            "kind": self.kind,
            "rung": self.rung,
            "level": rung_level(self.rung),
            "due": self.due.isoformat(),
            "fired_at": self.fired_at.isoformat(),
            "late_seconds": self.late_seconds,
            "outcome": self.outcome,
            "detail": self.detail,
        }


@dataclass
class Planned:
    """What firing one claimed timer writes, worked out before anything is written."""

    timer: Any
    fired: Fired
    status: str  # the row's final status: fired | cancelled
    notifications: list[dict[str, Any]] = field(default_factory=list)
    facts: list[dict[str, Any]] = field(default_factory=list)
    repeats: list[dict[str, Any]] = field(default_factory=list)
    level: tuple[str, int] | None = None  # (case, escalation level) a rung raises it to


@dataclass
class Batch:
    """The effects of one batch's timers, written together by the sweep."""

    planned: list[Planned] = field(default_factory=list)


# What the sweep needs of a case (not its history head, timestamps, creator).
CASE_COLUMNS = (
    cases.c.id,
    cases.c.definition_id,
    cases.c.state,
    cases.c.unit_code,
    cases.c.data,
    cases.c.revision,
    cases.c.escalation_level,
    cases.c.closed_at,
)


def due_rows(conn: Connection, at: dt.datetime, size: int) -> list[Any]:
    """The first *size* timers due at *at*, oldest first: pending ones past ``due_at``
    and failed ones past ``next_attempt_at``.  Two queries, each served in order by
    its own partial index (one ``OR`` would read neither), merged here."""
    t = timers.c
    pending = conn.execute(
        select(timers)
        .where(t.status == "pending", t.due_at <= at)
        .order_by(t.due_at, t.id)
        .limit(size)
    ).all()
    retry = conn.execute(
        select(timers)
        .where(t.status == "failed", t.next_attempt_at <= at)
        .order_by(t.next_attempt_at, t.id)
        .limit(size)
    ).all()
    if not retry:
        return list(pending)
    merged = sorted([*pending, *retry], key=lambda r: (r.next_attempt_at or r.due_at, r.id))
    return merged[:size]


def mark(conn: Connection, planned: Sequence[Planned]) -> None:
    """The final marks of the planned timers (fired or cancelled, with their detail):
    one UPDATE per distinct (status, detail) — a handful per batch."""
    groups: dict[tuple[str, dt.datetime, str], list[int]] = {}
    for p in planned:
        groups.setdefault((p.status, p.fired.fired_at, p.fired.detail), []).append(p.timer.id)
    for (status, at, detail), ids in groups.items():
        conn.execute(
            update(timers)
            .where(timers.c.id.in_(ids))
            .values(status=status, fired_at=at, detail=detail, next_attempt_at=None)
        )


def write(conn: Connection, planned: Sequence[Planned]) -> None:
    """The planned effects, one ``executemany`` per table: notifications, overdue facts,
    repeat reminders, escalation levels (each case raised once, to its highest)."""
    enqueue_many(conn, [n for p in planned for n in p.notifications])
    record_overdue_many(conn, [f for p in planned for f in p.facts])
    repeats = [r for p in planned for r in p.repeats]
    if repeats:
        conn.execute(insert(timers), repeats)
    levels: dict[str, int] = {}
    for p in planned:
        if p.level is not None:
            case_id, level = p.level
            levels[case_id] = max(level, levels.get(case_id, 0))
    raise_escalation_levels(conn, levels)
