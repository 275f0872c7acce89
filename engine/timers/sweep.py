"""The sweep: claim due timer rows and fire them, a batch per transaction with its effects.

A batch is a handful of statements whatever its size (``bench/timers.py``
counts them): the due rows (two indexed queries, pending and failed), their
cases read and locked in one statement (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several processes divide the due rows between them; SQLite has
no row locks, the writer holds the database from ``BEGIN IMMEDIATE``), the
claim — one ``UPDATE … RETURNING`` that moves the rows from pending (or failed
and due for a retry) to ``firing``, so only one claimer can win each — and
then the batch's effects, each kind in one ``executemany``: notifications,
overdue facts, the next occurrence of repeating reminders, escalation levels,
and the rows' final marks.  Claim, effects and marks commit together: a
process killed mid-sweep leaves the rows pending for the next sweep, and
nothing it did survives — nothing is lost or done twice.  Due rows fire oldest
first, so a restart after downtime catches up in order, each row recording
how late it fired.

One bad timer never stops the others.  A timer's effects are worked out in
Python first; one whose effects raise there (an unknown kind, a rung its
state does not have, a workflow that no longer compiles) writes nothing and
becomes ``failed`` with ``attempts``, ``last_error`` and a backoff
``next_attempt_at`` (:mod:`engine.timers.retry`).  Only the effects that run
code with its own writes get a savepoint of their own: an escalation rung's
trigger fired through :meth:`CaseService.fire_as_system` (with that timer's
other effects, written just before it), and the handlers of other
subsystems' timers (patrol obligations).  Should a batched write itself fail,
it rolls back to its savepoint and the batch's timers are written again one
by one, each in its own savepoint, so the failure stays with its timer.  A
failed timer is due again once its next attempt has passed, and is checked
against its case like any other: if the case moved on meanwhile it is
cancelled (stale), never fired.

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
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import DBAPIError

from engine.cases.service import CaseService
from engine.clock import Clock
from engine.definitions import StateSpec, Workflow
from engine.definitions.model import SYSTEM_ROLE
from engine.errors import EventRejected, TimerError, UnknownTimerKind
from engine.grid.visibility import ADMIN, Viewer
from engine.process import worker_id
from engine.store import connection, skip_locked, transaction
from engine.store.db import read_only
from engine.store.tables import cases, timers
from engine.timers.batch import CASE_COLUMNS, Batch, Fired, Planned, due_rows, mark, write
from engine.timers.facts import overdue_row
from engine.timers.ledger import TimerLedger
from engine.timers.retry import RetryPolicy
from engine.timers.schedule import TimerSchedule

__all__ = ["CASE_KINDS", "Fired", "TimerService", "worker_id"]

log = logging.getLogger(__name__)

CASE_KINDS = ("deadline", "reminder", "escalation")
SKIPPED_PAST_DEADLINE = "skipped: deadline passed"
MAX_ERROR_CHARS = 2000


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
        # Each runs in the sweep's transaction, in a savepoint of its own.
        self.handlers: dict[str, Callable[[Connection, Any, dt.datetime], str]] = {}
        self._actors: dict[tuple[int, str], list[str]] = {}  # a version's states never change

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
        """The earliest instant a timer is due: a pending one, or a failed one's next attempt.

        One statement, each half read from its partial index (``ix_timers_pending_due``,
        ``ix_timers_failed_next_attempt``); it takes no write lock on SQLite."""
        t = timers.c
        pending = select(func.min(t.due_at)).where(t.status == "pending").scalar_subquery()
        retry = select(func.min(t.next_attempt_at)).where(t.status == "failed").scalar_subquery()
        with connection(read_only(self.engine)) as conn:
            row = conn.execute(select(pending, retry)).one()
        times = [x for x in row if x is not None]
        return min(times, default=None)

    def _sweep_once(self, at: dt.datetime, size: int) -> tuple[list[Fired], int]:
        """One batch in one transaction; returns what fired and how many rows were due.

        Locks are taken in the order events take them — the case row, then its
        timers — so a sweep never deadlocks with an event or another sweeper:
        on PostgreSQL the batch's cases are locked ``FOR UPDATE SKIP LOCKED`` in
        id order, and only the timers of cases this sweeper holds are claimed.
        """
        fired: list[Fired] = []
        with transaction(self.engine, "sweep timers in") as conn:
            rows = due_rows(conn, at, size)
            held, case_rows = self._lock(conn, rows)
            claimed = self._claim(conn, [r for r in rows if r.id in held], at)
            batch = Batch()
            levels = {c.id: c.escalation_level for c in case_rows.values()}
            for row in rows:  # oldest first
                timer = claimed.get(row.id)
                if timer is not None:
                    fired.append(self._fire(conn, timer, at, batch, case_rows, levels))
            fired = self._flush(conn, batch, at, fired)
        for result in fired:
            for hook in self.on_fired:
                hook(result)
        return fired, len(rows)

    def _own(self, row: Any) -> bool:
        """A timer of another subsystem, or a stray row without a case."""
        return row.kind in self.handlers or row.case_id is None

    def _lock(self, conn: Connection, rows: Sequence[Any]) -> tuple[set[int], dict[str, Any]]:
        """The ids of *rows* this transaction may fire (SQLite: all; it holds the database),
        and the case rows of those, read and locked in one statement.

        A timer of a case is fired only by the sweeper holding the case's row — a duty's
        (签收, transfer) as well as the case's own: firing a duty writes rows that point
        at the case, which would hold it against the sweeper that has its other timers
        (each then skipping what the other holds; both could end with them unfired).
        A timer of another subsystem also needs its own row (``SKIP LOCKED``)."""
        wanted = sorted({r.case_id for r in rows if r.case_id is not None})
        case_rows: dict[str, Any] = {}
        if wanted:
            query = select(*CASE_COLUMNS).where(cases.c.id.in_(wanted)).order_by(cases.c.id)
            case_rows = {c.id: c for c in conn.execute(skip_locked(query, conn))}
        own = {r.id for r in rows if self._own(r) and (r.case_id is None or r.case_id in case_rows)}
        locked_own = _skip_locked(conn, timers.c.id, own)
        held = {
            r.id for r in rows if (r.id in locked_own if self._own(r) else r.case_id in case_rows)
        }
        return held, case_rows

    def _claim(self, conn: Connection, rows: Sequence[Any], at: dt.datetime) -> dict[int, Any]:
        """Claim *rows* that are still due, in one ``UPDATE … RETURNING``: each moves
        from pending (or failed, its next attempt due) to ``firing``, so only one claimer
        can win it; a row cancelled since it was read, or moved later (``timers
        recompute``), is left alone.  The claimed rows by id, as they are now: the few
        that changed since they were read (a due time moved but still due, a new case
        revision) are read again, so they are checked against their case as they are."""
        if not rows:
            return {}
        t = timers.c
        still_due = ((t.status == "pending") & (t.due_at <= at)) | (
            (t.status == "failed") & (t.next_attempt_at <= at)
        )
        claimed = conn.execute(
            update(timers)
            .where(t.id.in_([r.id for r in rows]), still_due)
            .values(status="firing", fired_by=self.worker)
            .returning(t.id, t.state, t.case_revision, t.due_at)
        ).all()
        by_id = {r.id: r for r in rows}
        out: dict[int, Any] = {}
        moved: list[int] = []
        for c in claimed:
            read = by_id[c.id]
            same = (read.state, read.case_revision, read.due_at) == (
                c.state,
                c.case_revision,
                c.due_at,
            )
            if same:
                out[c.id] = read
            else:
                moved.append(c.id)
        if moved:
            out.update((r.id, r) for r in conn.execute(select(timers).where(t.id.in_(moved))))
        return out

    def _fire(
        self,
        conn: Connection,
        timer: Any,
        now: dt.datetime,
        batch: Batch,
        case_rows: dict[str, Any],
        levels: dict[str, int],
    ) -> Fired:
        """Fire one claimed timer: its effects go into *batch* (or, for a rung with a
        trigger and another subsystem's timer, are written now in a savepoint); a timer
        whose effects raise is recorded ``failed`` and writes nothing else."""
        try:
            handler = self.handlers.get(timer.kind)
            if handler is not None:  # a timer of another subsystem (e.g. patrol obligations)
                with conn.begin_nested():
                    detail = handler(conn, timer, now)
                return self._plan(
                    batch, Planned(timer, Fired.of(timer, now, "fired", detail), "fired")
                )
            case = case_rows.get(timer.case_id) if timer.case_id is not None else None
            current = (
                case is not None
                and case.state == timer.state
                and case.revision == timer.case_revision
                and case.closed_at is None
            )
            if case is None or (current and timer.kind not in CASE_KINDS):
                # No code handles it (and a row without a case is never a case timer).
                raise UnknownTimerKind(timer.id, timer.kind, [*CASE_KINDS, *sorted(self.handlers)])
            if not current:
                stale = Fired.of(timer, now, "stale", "stale: the case moved on")
                return self._plan(batch, Planned(timer, stale, "cancelled"))
            planned, trigger = self._effects(conn, timer, case, now, levels)
            if trigger is None:
                return self._plan(batch, planned)
            return self._fire_trigger(conn, batch, planned, trigger, case_rows, levels)
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise  # the connection is gone: nothing of this batch can commit anyway
            return self._failed(conn, timer, now, exc)
        except Exception as exc:  # one bad timer never stops the others
            return self._failed(conn, timer, now, exc)

    @staticmethod
    def _plan(batch: Batch, planned: Planned) -> Fired:
        batch.planned.append(planned)
        return planned.fired

    def _fire_trigger(
        self,
        conn: Connection,
        batch: Batch,
        planned: Planned,
        trigger: str,
        case_rows: dict[str, Any],
        levels: dict[str, int],
    ) -> Fired:
        """A rung whose trigger moves the case: the batch so far is written first (so
        the level raised before the move is not written over the move's reset), then
        this rung's effects and the trigger together, in a savepoint of their own."""
        timer = planned.timer
        self._flush_planned(conn, batch)
        case_id = timer.case_id
        try:
            with conn.begin_nested():
                write(conn, [planned])
                try:
                    with conn.begin_nested():
                        moved = self.cases.fire_as_system(conn, case_id, trigger)
                    detail = f"{planned.fired.detail}; fired {trigger} → {moved.state}"
                except EventRejected as exc:
                    log.warning(
                        "case %s: rung %d trigger %s refused: %s", case_id, timer.rung, trigger, exc
                    )
                    detail = f"{planned.fired.detail}; trigger {trigger} refused: {exc}"
                conn.execute(
                    update(timers)
                    .where(timers.c.id == timer.id)
                    .values(
                        status="fired",
                        fired_at=planned.fired.fired_at,
                        detail=detail,
                        next_attempt_at=None,
                    )
                )
        finally:
            # Whatever happened, later timers of this case in the batch see it as it is now.
            case = conn.execute(select(*CASE_COLUMNS).where(cases.c.id == case_id)).one()
            case_rows[case_id] = case
            levels[case_id] = case.escalation_level
        return Fired.of(timer, planned.fired.fired_at, "fired", detail)

    def _flush(
        self, conn: Connection, batch: Batch, now: dt.datetime, fired: list[Fired]
    ) -> list[Fired]:
        """Write what the batch's timers planned; returns *fired* with the outcome of any
        timer whose write failed replaced by its failure."""
        failures = self._flush_planned(conn, batch)
        if not failures:
            return fired
        return [failures.get(f.timer_id, f) for f in fired]

    def _flush_planned(self, conn: Connection, batch: Batch) -> dict[int, Fired]:
        """Write *batch*'s planned effects and marks in one ``executemany`` per table and
        empty it; if that fails, write them again timer by timer, each in a savepoint, so
        the failure stays with its timer.  Returns the failures by timer id."""
        planned, batch.planned = batch.planned, []
        if not planned:
            return {}
        now = planned[0].fired.fired_at
        try:
            with conn.begin_nested():
                write(conn, planned)
                mark(conn, planned)
            return {}
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise
        failures: dict[int, Fired] = {}
        for one in planned:
            try:
                with conn.begin_nested():
                    write(conn, [one])
                    mark(conn, [one])
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise
                failures[one.timer.id] = self._failed(conn, one.timer, now, exc)
        return failures

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

    # -- effects ---------------------------------------------------------
    def _effects(
        self, conn: Connection, timer: Any, case: Any, now: dt.datetime, levels: dict[str, int]
    ) -> tuple[Planned, str | None]:
        """What a current case timer writes, and the trigger its rung fires (if any)."""
        wf = self.cases.catalog.compiled(conn, case.definition_id).workflow
        state = wf.state(timer.state)
        level_now = levels.get(case.id, case.escalation_level)
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
                "escalation_level": max(level_now, (timer.rung or -1) + 1),
            },
        }

        def planned(detail: str) -> Planned:
            return Planned(timer, Fired.of(timer, now, "fired", detail), "fired")

        if timer.kind == "reminder":
            if now >= timer.deadline_at:  # after downtime: the overdue notice says it all
                return planned(SKIPPED_PAST_DEADLINE), None
            done = planned("reminder queued")
            done.notifications.append(
                {
                    "case_id": case.id,
                    "kind": "reminder",
                    "roles": self._actors_in(case.definition_id, wf, state),
                    "template": "reminder",
                    "context": context,
                    "dedupe_key": f"timer:{timer.id}",
                    "at": now,
                }
            )
            done.repeats.extend(self._repeat(timer, now, wf, state))
            return done, None
        if timer.kind == "deadline":
            done = planned("deadline passed")
            done.facts.append(overdue_row(timer, case.unit_code, level_now, now))
            return done, None
        rungs = state.deadline.escalate if state.deadline is not None else ()
        if timer.rung is None or not 0 <= timer.rung < len(rungs):
            raise TimerError(
                f"timer {timer.id}: state {state.name!r} has no escalation rung {timer.rung}",
                timer=timer.id,
            )
        rung = rungs[timer.rung]
        level = max(level_now, timer.rung + 1)
        done = planned(f"escalated to level {level}")
        done.notifications.append(
            {
                "case_id": case.id,
                "kind": "escalation",
                "roles": [str(r) for r in rung.notify],
                "template": rung.template,
                "context": context,
                "dedupe_key": f"timer:{timer.id}",
                "at": now,
            }
        )
        done.level = (case.id, level)
        done.facts.append(overdue_row(timer, case.unit_code, level, now))
        levels[case.id] = level  # later rungs of this case in the batch see it raised
        return done, rung.trigger

    def _actors_in(self, definition_id: int, wf: Workflow, state: StateSpec) -> list[str]:
        key = (definition_id, state.name)
        roles = self._actors.get(key)
        if roles is None:
            roles = self._actors[key] = _actors_of(wf, state)
        return roles

    def _repeat(
        self, timer: Any, now: dt.datetime, wf: Workflow, state: StateSpec
    ) -> list[dict[str, Any]]:
        """A repeating reminder's next occurrence (none past its deadline), as a row."""
        if not timer.repeat_seconds:
            return []
        # The next occurrence after now: after downtime, one reminder, not a burst.
        # (Counted from this one's delivery, which office hours may have delayed.)
        step = dt.timedelta(seconds=timer.repeat_seconds)
        following = timer.due_at + step
        while following <= now:
            following += step
        if self.schedule is not None and state.deadline is not None:
            due = self.schedule.reminder_due(wf, state.deadline, following, timer.deadline_at)
            if due is None:
                return []
            following = due
        if following >= timer.deadline_at:
            return []
        return [
            {
                "case_id": timer.case_id,
                "state": timer.state,
                "case_revision": timer.case_revision,
                "kind": "reminder",
                "rung": None,
                "deadline_at": timer.deadline_at,
                "due_at": following,
                "repeat_seconds": timer.repeat_seconds,
                "status": "pending",
                "created_at": now,
            }
        ]

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
