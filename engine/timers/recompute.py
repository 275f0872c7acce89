"""Pending working-day timers recomputed from the current calendar (``gengbao timers recompute``).

Due times are computed once, when a case enters a state
(:mod:`engine.timers.schedule`).  When the calendar data changes under them —
typically the next year's arrangement added as ``config/calendars/2027.yaml``
after deadlines running into 2027 were counted on weekends only — the pending
timers would keep their wrong due times.  :meth:`TimerRecompute.run`
recomputes them the way entering the state did:

- which: the pending ``deadline``, ``reminder`` and ``escalation`` rows of
  each open case's current state entry (at the case's revision), when that
  state's deadline counts working days anywhere (``within``, ``remind``,
  ``escalate``).  Timers that already fired are history and stay.
- how: from the case's pinned workflow version and the state's deadline rule:
  the deadline from the time the state was entered (or its ``from:`` state's
  first entry); each ``remind`` entry before it; each rung after it.  An exact
  or ``until`` deadline keeps its stored time (only its working-day reminders
  or rungs can move).  A repeating reminder (``remind: {every}``) keeps its
  time and is cancelled if the new deadline falls before it.  Reminders are
  told apart by their order: entering a state writes its deadline row, then
  one reminder row per ``remind`` entry in order, in one insert.
- what is recorded: a ``deadline_moved`` system entry in the case's
  hash-chained history (from = to = the state; payload: old and new deadline,
  every moved timer, the calendar fingerprint).  Like every history row it is
  a revision, so the case's pending timers are re-pointed to the new revision
  (timers fire only at the revision they belong to) in the same transaction.

**One transaction per case**: a case that fails (its definition cannot be
compiled, a database error) is reported and the others go on; running again
is safe — a second run moves nothing.  A dry run reads and writes nothing.

``gengbao serve`` calls :meth:`TimerRecompute.run_if_calendar_changed` at
start: the calendar's fingerprint (:attr:`WorkingCalendar.fingerprint`) is
kept in ``system_values`` and the recompute runs only when it differs; it is
stored only after a run in which every case succeeded, so a failed case is
retried at the next start.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from engine.cases.service import CaseService
from engine.clock import Clock
from engine.definitions import Deadline, Workflow
from engine.store import connection, transaction
from engine.store.db import read_only
from engine.store.system_values import read_value, write_value
from engine.store.tables import cases, state_entries, timers
from engine.timers.rungs import rung_level
from engine.timers.schedule import TimerSchedule

__all__ = ["FINGERPRINT_KEY", "TRIGGER", "Failed", "Moved", "Recomputed", "TimerRecompute"]

log = logging.getLogger(__name__)

TRIGGER = "deadline_moved"
FINGERPRINT_KEY = "calendar.fingerprint"
_CASE_KINDS = ("deadline", "reminder", "escalation")


@dataclass(frozen=True, kw_only=True)
class Moved:
    """One pending timer whose due time changed (``new`` None: cancelled)."""

    case: str
    state: str
    timer_id: int
    kind: str
    rung: int | None
    old: dt.datetime
    new: dt.datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "state": self.state,
            "timer": self.timer_id,
            "kind": self.kind,
            "rung": self.rung,
            "level": rung_level(self.rung),
            "old": self.old.isoformat(),
            "new": self.new.isoformat() if self.new is not None else None,
        }


@dataclass(frozen=True, kw_only=True)
class Failed:
    case: str
    error: str

    def as_dict(self) -> dict[str, Any]:
        return {"case": self.case, "error": self.error}


@dataclass(frozen=True, kw_only=True)
class Recomputed:
    """What one run did (or, with ``dry_run``, would do)."""

    dry_run: bool
    fingerprint: str
    checked: int  # open cases with pending timers looked at
    moved: tuple[Moved, ...]
    failed: tuple[Failed, ...]

    @property
    def cases_moved(self) -> int:
        return len({m.case for m in self.moved})

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "calendar": self.fingerprint,
            "checked": self.checked,
            "cases_moved": self.cases_moved,
            "moved": [m.as_dict() for m in self.moved],
            "failed": [f.as_dict() for f in self.failed],
        }


@dataclass(frozen=True, kw_only=True)
class _Update:
    timer_id: int
    due_at: dt.datetime | None  # None: cancel
    deadline_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class _Plan:
    old_deadline: dt.datetime | None
    deadline: dt.datetime
    updates: tuple[_Update, ...]
    moved: tuple[Moved, ...]


class TimerRecompute:
    def __init__(
        self, engine: Engine, cases_service: CaseService, schedule: TimerSchedule, clock: Clock
    ) -> None:
        self.engine = engine
        self.cases = cases_service
        self.schedule = schedule
        self.calendar = schedule.calendar
        self.clock = clock

    def run_if_calendar_changed(self) -> Recomputed | None:
        """Recompute when the calendar data differs from the last complete run's; else None."""
        with connection(read_only(self.engine)) as conn:
            stored = read_value(conn, FINGERPRINT_KEY)
        if stored == self.calendar.fingerprint:
            return None
        return self.run()

    def run(self, *, dry_run: bool = False) -> Recomputed:
        moved: list[Moved] = []
        failed: list[Failed] = []
        candidates = self._candidates()
        for case_id in candidates:
            try:
                plan = self._preview(case_id) if dry_run else self._recompute(case_id)
            except Exception as exc:  # one case never stops the others
                log.exception("case %s: timers not recomputed", case_id)
                failed.append(Failed(case=case_id, error=str(exc) or type(exc).__name__))
                continue
            if plan is not None:
                moved.extend(plan.moved)
        unknown = sorted(self.calendar.warned_years)
        if unknown:
            log.warning(
                "deadlines count working days in %s with no official holiday arrangement "
                "(weekends and override days only); add them to config/calendars/ with "
                "'years: [...]' once announced",
                ", ".join(map(str, unknown)),
            )
        fingerprint = self.calendar.fingerprint
        if not dry_run and not failed:
            with transaction(self.engine) as conn:
                write_value(conn, FINGERPRINT_KEY, fingerprint, self.clock.now())
        return Recomputed(
            dry_run=dry_run,
            fingerprint=fingerprint,
            checked=len(candidates),
            moved=tuple(moved),
            failed=tuple(failed),
        )

    # -- one case ----------------------------------------------------------
    def _candidates(self) -> list[str]:
        t = timers.c
        query = (
            select(t.case_id)
            .join(cases, cases.c.id == t.case_id)
            .where(t.status == "pending", t.kind.in_(_CASE_KINDS), cases.c.closed_at.is_(None))
            .distinct()
            .order_by(t.case_id)
        )
        with connection(read_only(self.engine)) as conn:
            return list(conn.execute(query).scalars())

    def _preview(self, case_id: str) -> _Plan | None:
        with connection(read_only(self.engine)) as conn:
            row = conn.execute(select(cases).where(cases.c.id == case_id)).one_or_none()
            return self._plan(conn, row) if row is not None else None

    def _recompute(self, case_id: str) -> _Plan | None:
        with transaction(self.engine) as conn:
            row = self.cases.lock(conn, case_id)
            plan = self._plan(conn, row)
            if plan is not None:
                self._apply(conn, row, plan)
            return plan

    def _plan(self, conn: Connection, row: Any) -> _Plan | None:
        if row.closed_at is not None:
            return None
        wf = self.cases.catalog.compiled(conn, row.definition_id).workflow
        if not wf.has_state(row.state):
            return None
        state = wf.state(row.state)
        d = state.deadline
        if d is None or state.final or not _counts_working_days(d):
            return None
        t = timers.c
        pending = conn.execute(
            select(timers)
            .where(
                t.case_id == row.id,
                t.status == "pending",
                t.state == row.state,
                t.case_revision == row.revision,
                t.kind.in_(_CASE_KINDS),
            )
            .order_by(t.id)
        ).all()
        if not pending:
            return None
        # The entry's deadline row: written first when the state was entered.
        anchor = conn.execute(
            select(timers)
            .where(
                t.case_id == row.id,
                t.state == row.state,
                t.kind == "deadline",
                t.id <= pending[0].id,
            )
            .order_by(t.id.desc())
            .limit(1)
        ).one_or_none()
        if anchor is None:
            return None
        reminders = conn.execute(
            select(t.id)
            .where(
                t.case_id == row.id,
                t.state == row.state,
                t.kind == "reminder",
                t.repeat_seconds.is_(None),
                t.created_at == anchor.created_at,
                t.id > anchor.id,
            )
            .order_by(t.id)
        ).scalars()
        remind_index = {timer_id: i for i, timer_id in enumerate(reminders)}
        tz = wf.timezone or self.schedule.default_timezone
        deadline = self._deadline(conn, row, d, anchor.deadline_at, tz)
        updates: list[_Update] = []
        moved: list[Moved] = []
        for timer in pending:
            due = self._due(timer, wf, d, deadline, tz, remind_index)
            if due == timer.due_at and deadline == timer.deadline_at:
                continue
            updates.append(_Update(timer_id=timer.id, due_at=due, deadline_at=deadline))
            if due != timer.due_at:
                moved.append(
                    Moved(
                        case=row.id,
                        state=row.state,
                        timer_id=timer.id,
                        kind=timer.kind,
                        rung=timer.rung,
                        old=timer.due_at,
                        new=due,
                    )
                )
        if not updates:
            return None
        return _Plan(
            old_deadline=anchor.deadline_at,
            deadline=deadline,
            updates=tuple(updates),
            moved=tuple(moved),
        )

    def _deadline(
        self, conn: Connection, row: Any, d: Deadline, stored: dt.datetime, tz: str
    ) -> dt.datetime:
        """The state's deadline by the current calendar (as TimerSchedule computes it at entry)."""
        if d.until_field is not None or d.within is None or d.within.kind != "working_days":
            return stored  # a date field or an exact duration: the calendar plays no part
        start: dt.datetime = row.state_entered_at
        if d.from_state is not None:
            first = conn.execute(
                select(state_entries.c.first_entered_at).where(
                    state_entries.c.case_id == row.id, state_entries.c.state == d.from_state
                )
            ).scalar_one_or_none()
            start = first or start
        return self.calendar.due(start, d.within, tz)  # unknown years: one warning per run

    def _due(
        self,
        timer: Any,
        wf: Workflow,
        d: Deadline,
        deadline: dt.datetime,
        tz: str,
        remind_index: dict[int, int],
    ) -> dt.datetime | None:
        """The timer's due time by the current calendar; None: it no longer belongs.

        Reminders go through the schedule's office hours, as at entry."""
        current: dt.datetime = timer.due_at
        if timer.kind == "deadline":
            return deadline
        if timer.kind == "reminder":
            if timer.repeat_seconds:
                return current if current < deadline else None
            index = remind_index.get(timer.id)
            if index is None or index >= len(d.remind):
                return current
            nominal = self.calendar.before(deadline, d.remind[index], tz)
            return self.schedule.reminder_due(wf, d, nominal, deadline)
        rung = timer.rung
        if rung is None or rung >= len(d.escalate):
            return current
        return self.schedule.after(deadline, d.escalate[rung].after, tz)

    def _apply(self, conn: Connection, row: Any, plan: _Plan) -> None:
        payload = {
            "reason": "the working-day calendar changed",
            "calendar": self.calendar.fingerprint,
            "deadline": {
                "old": plan.old_deadline.isoformat() if plan.old_deadline else None,
                "new": plan.deadline.isoformat(),
            },
            "timers": [
                {k: v for k, v in m.as_dict().items() if k not in ("case", "state")}
                for m in plan.moved
            ],
        }
        self.cases.note(conn, row, TRIGGER, payload)
        t = timers.c
        for u in plan.updates:
            values: dict[str, Any] = {"deadline_at": u.deadline_at}
            if u.due_at is None:
                values["status"] = "cancelled"
            else:
                values["due_at"] = u.due_at
            conn.execute(update(timers).where(t.id == u.timer_id).values(**values))
        conn.execute(update(cases).where(cases.c.id == row.id).values(deadline_at=plan.deadline))


def _counts_working_days(d: Deadline) -> bool:
    spans = [d.within, d.remind_every, *d.remind, *(rung.after for rung in d.escalate)]
    return any(span is not None and span.kind == "working_days" for span in spans)
