"""The sweep: claim due timer rows and fire each in the same transaction as its effects.

Claims are ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several processes
divide the due rows between them; on SQLite (no ``FOR UPDATE``) the writer
holds the database lock from ``BEGIN IMMEDIATE`` and each claim is a
conditional update only one claimer can win.  Claim, effects and the
``fired`` mark commit together: a process killed mid-sweep leaves the rows
pending for the next sweep, and nothing it did survives — nothing is lost or
done twice.  Due rows fire oldest first, so a restart after downtime catches
up in order, each row recording how late it fired.

Each timer fires in its own savepoint: when its effects raise (an unknown
kind, a template or trigger that fails, a bug), they roll back, the row
becomes ``failed`` with ``attempts``, ``last_error`` and a backoff
``next_attempt_at`` (:mod:`engine.timers.retry`), and the rest of the batch
fires and commits.  A failed timer is due again once its next attempt has
passed, and is checked against its case like any other: if the case moved on
meanwhile it is cancelled (stale), never fired.

Effects by kind:

- ``reminder``: a notification to the roles that can act in the state (the
  roles of its outgoing transitions); a repeating reminder schedules its next
  occurrence if it falls before the deadline.  A reminder that fires once its
  deadline has passed (after downtime) is not sent — "will expire at …" would
  arrive with the overdue notice; the row is ``fired`` with detail
  ``skipped: deadline passed``.
- ``deadline``: an overdue fact (rung NULL) — the deadline passed in that state.
- ``escalation``: a notification to the rung's ``notify`` roles, the case's
  escalation level raised to the rung, an overdue fact for the rung, and the
  rung's ``trigger`` fired as the system actor.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import DBAPIError

from engine.cases.rows import raise_escalation_level
from engine.cases.service import CaseService
from engine.clock import Clock
from engine.definitions import StateSpec, Workflow
from engine.definitions.model import SYSTEM_ROLE
from engine.errors import EventRejected, TimerError, UnknownTimerKind
from engine.grid.visibility import ADMIN, Viewer
from engine.process import worker_id
from engine.store import connection, skip_locked, transaction
from engine.store.tables import cases, timers
from engine.timers.facts import record_overdue
from engine.timers.ledger import TimerLedger
from engine.timers.retry import RetryPolicy
from engine.timers.rungs import rung_level
from engine.timers.schedule import TimerSchedule
from notifications.outbox import enqueue

__all__ = ["CASE_KINDS", "Fired", "TimerService", "worker_id"]

log = logging.getLogger(__name__)

CASE_KINDS = ("deadline", "reminder", "escalation")
SKIPPED_PAST_DEADLINE = "skipped: deadline passed"
MAX_ERROR_CHARS = 2000


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


class TimerService:
    def __init__(
        self,
        engine: Engine,
        cases_service: CaseService,
        clock: Clock,
        *,
        batch: int = 200,
        worker: str | None = None,
        retry: RetryPolicy | None = None,
        schedule: TimerSchedule | None = None,
    ) -> None:
        self.engine = engine
        self.cases = cases_service
        self.clock = clock
        self.batch = batch
        self.worker = worker or worker_id()
        self.retry_policy = retry or RetryPolicy()
        self.schedule = schedule  # office hours for a repeating reminder's next occurrence
        self.ledger = TimerLedger(engine, clock)
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
        """The earliest instant a timer is due: a pending one, or a failed one's next attempt."""
        t = timers.c
        with connection(self.engine) as conn:
            pending = conn.execute(select(func.min(t.due_at)).where(t.status == "pending"))
            retry = conn.execute(select(func.min(t.next_attempt_at)).where(t.status == "failed"))
            times = [x for x in (pending.scalar(), retry.scalar()) if x is not None]
        return min(times, default=None)

    def _sweep_once(self, at: dt.datetime, size: int) -> tuple[list[Fired], int]:
        """One batch in one transaction; returns what fired and how many rows were due.

        Locks are taken in the order events take them — the case row, then its
        timers — so a sweep never deadlocks with an event or another sweeper:
        on PostgreSQL the batch's cases are locked ``FOR UPDATE SKIP LOCKED`` in
        id order, and only the timers of cases this sweeper holds are claimed.
        """
        t = timers.c
        fired: list[Fired] = []
        with transaction(self.engine, "sweep timers in") as conn:
            rows = _due(conn, at, size)
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
                        t.status == row.status,
                        t.due_at == row.due_at,
                        t.case_revision == row.case_revision,
                    )
                    .values(status="firing", fired_by=self.worker)
                ).rowcount
                if claimed == 1:
                    fired.append(self._fire_isolated(conn, row, at))
        for result in fired:
            for hook in self.on_fired:
                hook(result)
        return fired, len(rows)

    def _lock(self, conn: Connection, rows: Sequence[Any]) -> set[int]:
        """The ids of *rows* this transaction may fire (SQLite: all; it holds the database)."""

        def own(r: Any) -> bool:  # a timer of another subsystem, or a stray row without a case
            return r.kind in self.handlers or r.case_id is None

        locked_cases = _skip_locked(conn, cases.c.id, {r.case_id for r in rows if not own(r)})
        locked_own = _skip_locked(conn, timers.c.id, {r.id for r in rows if own(r)})
        return {r.id for r in rows if (r.id in locked_own if own(r) else r.case_id in locked_cases)}

    def _fire_isolated(self, conn: Connection, timer: Any, now: dt.datetime) -> Fired:
        """Fire *timer* in its own savepoint; if anything in it raises, record the failure."""
        try:
            with conn.begin_nested():
                return self._fire(conn, timer, now)
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise  # the connection is gone: nothing of this batch can commit anyway
            return self._failed(conn, timer, now, exc)
        except Exception as exc:  # one bad timer never stops the others
            return self._failed(conn, timer, now, exc)

    def _failed(self, conn: Connection, timer: Any, now: dt.datetime, exc: Exception) -> Fired:
        attempts = (timer.attempts or 0) + 1
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        retry_at = self.retry_policy.next_attempt(attempts, now)
        conn.execute(
            update(timers)
            .where(timers.c.id == timer.id)
            .values(
                status="failed",
                attempts=attempts,
                last_error=error,
                next_attempt_at=retry_at,
                fired_at=None,
            )
        )
        then = (
            f"next attempt {retry_at.isoformat()}"
            if retry_at is not None
            else f"no more attempts (gengbao timers retry {timer.id})"
        )
        detail = f"failed (attempt {attempts} of {self.retry_policy.max_attempts}): {error}; {then}"
        log.warning("timer %s %s case %s: %s", timer.id, timer.kind, timer.case_id, detail)
        return Fired.of(timer, now, "failed", detail)

    def _fire(self, conn: Connection, timer: Any, now: dt.datetime) -> Fired:
        handler = self.handlers.get(timer.kind)
        if handler is not None:  # a timer of another subsystem (e.g. patrol obligations)
            detail = handler(conn, timer, now)  # (in the savepoint of _fire_isolated)
            self._mark(conn, timer, "fired", now, detail)
            return Fired.of(timer, now, "fired", detail)
        case = conn.execute(select(cases).where(cases.c.id == timer.case_id)).one_or_none()
        current = (
            case is not None
            and case.state == timer.state
            and case.revision == timer.case_revision
            and case.closed_at is None
        )
        if case is None or (current and timer.kind not in CASE_KINDS):
            # No code handles it (and a row without a case is never a case timer).
            raise UnknownTimerKind(timer.id, timer.kind, [*CASE_KINDS, *sorted(self.handlers)])
        status = "fired" if current else "cancelled"
        detail = self._effects(conn, timer, case, now) if current else "stale: the case moved on"
        self._mark(conn, timer, status, now, detail)
        return Fired.of(timer, now, "fired" if current else "stale", detail)

    def _mark(
        self, conn: Connection, timer: Any, status: str, now: dt.datetime, detail: str
    ) -> None:
        conn.execute(
            update(timers)
            .where(timers.c.id == timer.id)
            .values(status=status, fired_at=now, detail=detail, next_attempt_at=None)
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
            if now >= timer.deadline_at:  # after downtime: the overdue notice says it all
                return SKIPPED_PAST_DEADLINE
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
            self._repeat(conn, timer, now, wf, state)
            return "reminder queued"
        if timer.kind == "deadline":
            record_overdue(conn, timer, case.unit_code, case.escalation_level, now)
            return "deadline passed"
        rungs = state.deadline.escalate if state.deadline is not None else ()
        if timer.rung is None or not 0 <= timer.rung < len(rungs):
            raise TimerError(
                f"timer {timer.id}: state {state.name!r} has no escalation rung {timer.rung}",
                timer=timer.id,
            )
        rung = rungs[timer.rung]
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
        raise_escalation_level(conn, case.id, level)
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

    def _repeat(
        self, conn: Connection, timer: Any, now: dt.datetime, wf: Workflow, state: StateSpec
    ) -> None:
        if not timer.repeat_seconds:
            return
        # The next occurrence after now: after downtime, one reminder, not a burst.
        # (Counted from this one's delivery, which office hours may have delayed.)
        step = dt.timedelta(seconds=timer.repeat_seconds)
        following = timer.due_at + step
        while following <= now:
            following += step
        if self.schedule is not None and state.deadline is not None:
            due = self.schedule.reminder_due(wf, state.deadline, following, timer.deadline_at)
            if due is None:
                return
            following = due
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

    # -- reading and re-arming (case show, timers list, timers retry) ----
    def describe(self, case_id: str, *, viewer: Viewer | str = ADMIN) -> dict[str, Any]:
        """Pending and failed timers and overdue facts of a case (for ``case show``)."""
        return self.ledger.describe(case_id, viewer=viewer)

    def list_timers(
        self, status: str | None = None, case: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Timers of one status (default: pending and failed), oldest due first."""
        return self.ledger.find(status, case, limit)

    def retry(self, timer_id: int) -> dict[str, Any]:
        """Re-arm a failed timer (``gengbao timers retry ID``); it fires at the next sweep."""
        return self.ledger.retry(timer_id)


def _due(conn: Connection, at: dt.datetime, size: int) -> list[Any]:
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


def _skip_locked(conn: Connection, key: Any, ids: set[Any]) -> set[Any]:
    """Lock the rows with these keys that nobody else holds, in key order; their keys."""
    if not ids:
        return set()
    query = select(key).where(key.in_(sorted(ids))).order_by(key)
    return set(conn.execute(skip_locked(query, conn)).scalars())


def _actors_of(wf: Workflow, state: StateSpec) -> list[str]:
    """Who can act in *state*: the roles of its outgoing transitions (not the system)."""
    roles = {str(r) for t in wf.transitions_from(state.name) for r in t.roles}
    return sorted(roles - {SYSTEM_ROLE})
