"""The sweep: claim due timer rows and fire each in the same transaction as its effects.

Claims are ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several processes
divide the due rows between them; on SQLite (no ``FOR UPDATE``) the writer
holds the database lock from ``BEGIN IMMEDIATE`` and each claim is a
conditional update only one claimer can win.  Claim, effects and the
``fired`` mark commit together: a process killed mid-sweep leaves the rows
pending for the next sweep, and nothing it did survives — nothing is lost or
done twice.  Due rows fire oldest first, so a restart after downtime catches
up in order, each row recording how late it fired.

Effects by kind:

- ``reminder``: a notification to the roles that can act in the state (the
  roles of its outgoing transitions); a repeating reminder schedules its next
  occurrence if it falls before the deadline.
- ``deadline``: an overdue fact (rung NULL) — the deadline passed in that state.
- ``escalation``: a notification to the rung's ``notify`` roles, the case's
  escalation level raised to the rung, an overdue fact for the rung, and the
  rung's ``trigger`` fired as the system actor.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from engine.cases import CaseService
from engine.clock import Clock
from engine.definitions import StateSpec, Workflow
from engine.definitions.model import SYSTEM_ROLE
from engine.errors import EventRejected
from engine.tables import cases, overdue_facts, timers
from engine.timers.facts import record_overdue
from notifications.outbox import enqueue

__all__ = ["Fired", "TimerService", "worker_id"]

log = logging.getLogger(__name__)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Fired:
    timer_id: int
    case: str
    state: str
    kind: str
    rung: int | None
    due: dt.datetime
    fired_at: dt.datetime
    outcome: str  # fired | stale
    detail: str = ""

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
            "due": self.due.isoformat(),
            "fired_at": self.fired_at.isoformat(),
            "late_seconds": self.late_seconds,
            "outcome": self.outcome,
            "detail": self.detail,
        }


class TimerService:
    def __init__(
        self,
        engine: Engine,
        cases_service: CaseService,
        clock: Clock,
        *,
        batch: int = 200,
        worker: str | None = None,
    ) -> None:
        self.engine = engine
        self.cases = cases_service
        self.clock = clock
        self.batch = batch
        self.worker = worker or worker_id()
        self._pg = engine.dialect.name == "postgresql"
        self.on_fired: list[Callable[[Fired], None]] = []
        # Timer kinds owned by other subsystems: kind → handler(conn, timer row, now) → detail.
        # Each runs in the sweep's transaction, like the case timers' effects.
        self.handlers: dict[str, Callable[[Connection, Any, dt.datetime], str]] = {}

    # -- the loop body ---------------------------------------------------
    def run_due(self, now: dt.datetime | None = None, limit: int | None = None) -> list[Fired]:
        """Fire every timer due at *now* (default: the clock), oldest first.

        Timers whose case another transaction holds (an event in flight, another
        sweeper) are left for the next sweep rather than waited for.
        """
        at = now or self.clock.now()
        fired: list[Fired] = []
        while limit is None or len(fired) < limit:
            size = self.batch if limit is None else min(self.batch, limit - len(fired))
            done, seen = self._sweep_once(at, size)
            fired.extend(done)
            if seen < size or not done:
                break
        return fired

    def next_due(self) -> dt.datetime | None:
        with self.engine.connect() as conn:
            due: dt.datetime | None = conn.execute(
                select(func.min(timers.c.due_at)).where(timers.c.status == "pending")
            ).scalar()
            return due

    def _sweep_once(self, at: dt.datetime, size: int) -> tuple[list[Fired], int]:
        """One batch in one transaction; returns what fired and how many rows were due.

        Locks are taken in the order events take them — the case row, then its
        timers — so a sweep never deadlocks with an event or another sweeper:
        on PostgreSQL the batch's cases are locked ``FOR UPDATE SKIP LOCKED`` in
        id order, and only the timers of cases this sweeper holds are claimed.
        """
        t = timers.c
        due = (
            select(timers)
            .where(t.status == "pending", t.due_at <= at)
            .order_by(t.due_at, t.id)
            .limit(size)
        )
        fired: list[Fired] = []
        with self.engine.begin() as conn:
            rows = conn.execute(due).all()
            held = self._lock(conn, rows)
            for row in rows:
                if row.id not in held:
                    continue  # its case (or the row) is another transaction's right now
                # Claimed only as read: a row moved since (``timers recompute`` changes
                # its due time and revision) is left for the next sweep.
                claimed = conn.execute(
                    update(timers)
                    .where(
                        t.id == row.id,
                        t.status == "pending",
                        t.due_at == row.due_at,
                        t.case_revision == row.case_revision,
                    )
                    .values(status="firing", fired_by=self.worker)
                ).rowcount
                if claimed == 1:
                    fired.append(self._fire(conn, row, at))
        for result in fired:
            for hook in self.on_fired:
                hook(result)
        return fired, len(rows)

    def _lock(self, conn: Connection, rows: Sequence[Any]) -> set[int]:
        """The ids of *rows* this transaction may fire (SQLite: all; it holds the database)."""
        if not self._pg:
            return {row.id for row in rows}
        locked_cases = _skip_locked(
            conn, cases.c.id, {r.case_id for r in rows if r.kind not in self.handlers}
        )
        locked_own = _skip_locked(
            conn, timers.c.id, {r.id for r in rows if r.kind in self.handlers}
        )
        return {
            r.id
            for r in rows
            if (r.id in locked_own if r.kind in self.handlers else r.case_id in locked_cases)
        }

    def _fire(self, conn: Connection, timer: Any, now: dt.datetime) -> Fired:
        handler = self.handlers.get(timer.kind)
        if handler is not None:  # a timer of another subsystem (e.g. patrol obligations)
            with conn.begin_nested():
                detail = handler(conn, timer, now)
            conn.execute(
                update(timers).where(timers.c.id == timer.id).values(status="fired", fired_at=now)
            )
            return Fired(
                timer.id,
                timer.case_id or "",
                timer.state,
                timer.kind,
                timer.rung,
                timer.due_at,
                now,
                "fired",
                detail,
            )
        case = conn.execute(select(cases).where(cases.c.id == timer.case_id)).one()
        current = (
            case.state == timer.state
            and case.row_version == timer.case_revision
            and case.closed_at is None
        )
        status = "fired" if current else "cancelled"
        detail = ""
        if current:
            with conn.begin_nested():
                detail = self._effects(conn, timer, case, now)
        conn.execute(
            update(timers).where(timers.c.id == timer.id).values(status=status, fired_at=now)
        )
        return Fired(
            timer.id,
            timer.case_id,
            timer.state,
            timer.kind,
            timer.rung,
            timer.due_at,
            now,
            "fired" if current else "stale",
            detail,
        )

    # -- effects ---------------------------------------------------------
    def _effects(self, conn: Connection, timer: Any, case: Any, now: dt.datetime) -> str:
        wf = self.cases.catalog.compiled(conn, case.definition_id).workflow
        state = wf.state(timer.state)
        context = {
            "deadline": {
                "due": timer.deadline_at.isoformat(),
                "state": state.name,
                "state_title": state.title,
                "rung": timer.rung,
                "timer_due": timer.due_at.isoformat(),
            },
            "snapshot": {
                "state": case.state,
                "data": case.data,
                "escalation_level": max(case.escalation_level, (timer.rung or -1) + 1),
            },
        }
        if timer.kind == "reminder":
            enqueue(
                conn,
                case_id=case.id,
                kind="reminder",
                roles=_actors_of(wf, state),
                template="reminder",
                context=context,
                dedupe_key=f"timer:{timer.id}",
                at=now,
            )
            self._repeat(conn, timer, now)
            return "reminder queued"
        if timer.kind == "deadline":
            record_overdue(conn, timer, case.unit_code, case.escalation_level, now)
            return "deadline passed"
        assert state.deadline is not None and timer.rung is not None
        rung = state.deadline.escalate[timer.rung]
        level = max(case.escalation_level, timer.rung + 1)
        enqueue(
            conn,
            case_id=case.id,
            kind="escalation",
            roles=[str(r) for r in rung.notify],
            template=rung.template,
            context=context,
            dedupe_key=f"timer:{timer.id}",
            at=now,
        )
        conn.execute(update(cases).where(cases.c.id == case.id).values(escalation_level=level))
        record_overdue(conn, timer, case.unit_code, level, now)
        detail = f"escalated to level {level}"
        if rung.trigger is not None:
            try:
                with conn.begin_nested():
                    moved = self.cases.fire_as_system(conn, case.id, rung.trigger)
                detail += f"; fired {rung.trigger} → {moved.state}"
            except EventRejected as exc:
                log.warning(
                    "case %s: rung %d trigger %s refused: %s",
                    case.id,
                    timer.rung,
                    rung.trigger,
                    exc,
                )
                detail += f"; trigger {rung.trigger} refused: {exc}"
        return detail

    def _repeat(self, conn: Connection, timer: Any, now: dt.datetime) -> None:
        if not timer.repeat_seconds:
            return
        # The next occurrence after now: after downtime, one reminder, not a burst.
        step = dt.timedelta(seconds=timer.repeat_seconds)
        following = timer.due_at + step
        while following <= now:
            following += step
        if following >= timer.deadline_at:
            return
        conn.execute(
            insert(timers).values(
                case_id=timer.case_id,
                state=timer.state,
                case_revision=timer.case_revision,
                kind="reminder",
                rung=None,
                deadline_at=timer.deadline_at,
                due_at=following,
                repeat_seconds=timer.repeat_seconds,
                status="pending",
                created_at=now,
            )
        )

    # -- reading ---------------------------------------------------------
    def describe(self, case_id: str) -> dict[str, Any]:
        """Pending timers and overdue facts of a case (for ``case show``)."""
        with self.engine.connect() as conn:
            pending = conn.execute(
                select(timers.c.kind, timers.c.rung, timers.c.due_at)
                .where(timers.c.case_id == case_id, timers.c.status == "pending")
                .order_by(timers.c.due_at, timers.c.id)
            ).all()
            facts = conn.execute(
                select(overdue_facts)
                .where(overdue_facts.c.case_id == case_id)
                .order_by(overdue_facts.c.id)
            ).all()
        return {
            "timers": [{"kind": k, "rung": r, "due": d.isoformat()} for k, r, d in pending],
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


def _skip_locked(conn: Connection, key: Any, ids: set[Any]) -> set[Any]:
    """Lock the rows with these keys that nobody else holds, in key order; their keys."""
    if not ids:
        return set()
    query = select(key).where(key.in_(sorted(ids))).order_by(key).with_for_update(skip_locked=True)
    return set(conn.execute(query).scalars())


def _actors_of(wf: Workflow, state: StateSpec) -> list[str]:
    """Who can act in *state*: the roles of its outgoing transitions (not the system)."""
    roles = {str(r) for t in wf.transitions_from(state.name) for r in t.roles}
    return sorted(roles - {SYSTEM_ROLE})
