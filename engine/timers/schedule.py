"""Entering a state writes its timer rows; leaving it cancels them — in the event's transaction.

For a state with a deadline: one ``deadline`` row, one ``reminder`` row per
``remind`` entry (or one repeating row for ``remind: {every: D}``), and one
``escalation`` row per rung.  Due times come from the working-day calendar
in the workflow's time zone.

Office hours (``reminders: {office_hours: "08:30-18:00"}`` in the workflow,
else the settings' default) move a reminder that falls outside them to the
next start of office hours — on a working day when the deadline counts
working days — so the row's ``due_at`` is already the delivery time and
``case show`` tells the truth.  A reminder that would then arrive at or after
its deadline is not written (the overdue notice and escalations take over).
Reminders of urgent states (a deadline under one day, e.g. ``within: 2h``),
deadlines and escalation rungs are never delayed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import Connection, bindparam, insert, select, update

from engine.calendars import WorkingCalendar
from engine.cases.service import Change
from engine.definitions import Deadline, Duration, Workflow
from engine.definitions.office_hours import OfficeHours
from engine.store.bulk import insert_many
from engine.store.prepared import Prepared
from engine.store.tables import state_entries, timers
from engine.timers import wake
from engine.timers.facts import record_overdue

__all__ = ["TimerSchedule"]

log = logging.getLogger(__name__)

# Leaving a state, in one statement: its waiting timers (pending, or failed and
# waiting for a retry) are cancelled, except a deadline or rung already due that
# no sweep has fired yet, which is marked fired "on-leave"; RETURNING tells which
# (ids only: the fired ones, rare, are read back typed).  Written with = … OR = …
# rather than IN (…), so it compiles to one fixed SQL text for Prepared.
_WAITING = (timers.c.status == "pending") | (timers.c.status == "failed")
_LEFT_AT = bindparam("left_at", type_=timers.c.due_at.type)
_DUE = (timers.c.due_at <= _LEFT_AT) & (
    (timers.c.kind == "deadline") | (timers.c.kind == "escalation")
)
_LEAVE = (
    update(timers)
    .where(timers.c.case_id == bindparam("leaving_case"), _WAITING)
    .values(
        status=sa.case((_DUE, "fired"), else_="cancelled"),
        fired_at=sa.case((_DUE, _LEFT_AT), else_=timers.c.fired_at),
        fired_by=sa.case((_DUE, "on-leave"), else_=timers.c.fired_by),
        next_attempt_at=sa.case((_DUE, timers.c.next_attempt_at), else_=None),
    )
    .returning(timers.c.id, timers.c.status)
)
_LEAVE_PREPARED = Prepared(_LEAVE, ("leaving_case", "left_at"))
_TIMERS_BY_ID = select(timers).where(timers.c.id.in_(bindparam("ids", expanding=True)))
TIMER_COLUMNS = (
    "case_id",
    "state",
    "case_revision",
    "kind",
    "rung",
    "deadline_at",
    "due_at",
    "repeat_seconds",
    "status",
    "created_at",
    "subject_id",
)
_INSERT_TIMERS = Prepared(insert(timers), TIMER_COLUMNS)
_FIRST_ENTRY = select(state_entries.c.first_entered_at).where(
    state_entries.c.case_id == bindparam("case_id"), state_entries.c.state == bindparam("state")
)


class TimerSchedule:
    """Effects hook that keeps a case's timer rows in step with its state."""

    def __init__(
        self,
        calendar: WorkingCalendar,
        default_timezone: str = "Asia/Shanghai",
        *,
        office_hours: OfficeHours | None = None,
    ) -> None:
        self.calendar = calendar
        self.default_timezone = default_timezone
        self.office_hours = office_hours  # the default; a workflow's own value wins
        # Timer rows of duties that start when a case enters a state (an acknowledgement
        # deadline), written in the same statement as the state's own: no statement for
        # a change that enters a state without such a duty.
        self.duties: list[Callable[[Change], list[dict[str, Any]]]] = []

    def on_change(self, conn: Connection, change: Change) -> dict[str, Any]:
        if change.from_state is not None:
            self.leave(conn, change)
        state = change.workflow.state(change.to_state)
        deadline_at: dt.datetime | None = None
        rows: list[dict[str, Any]] = []
        if state.deadline is not None and not state.final:
            tz = change.workflow.timezone or self.default_timezone
            deadline_at = self.deadline_at(conn, change, state.deadline, tz)
            if deadline_at is not None:
                rows = self.rows(change, state.deadline, deadline_at, tz)
        for duty in self.duties:
            rows.extend(duty(change))
        if rows:
            _INSERT_TIMERS.executemany(conn, rows)
            wake.written(conn, min(r["due_at"] for r in rows))
        if deadline_at is not None or change.from_state is not None:
            change.case_values["deadline_at"] = deadline_at  # the case service writes it
        return {"deadline_at": deadline_at.isoformat() if deadline_at else None}

    def on_changes(self, conn: Connection, changes: Sequence[Change]) -> list[dict[str, Any]]:
        """:meth:`on_change` for many changes in one go (a bulk import), its extras in
        order.  A creation's rows come from one template per (definition, state,
        instant) — the due times depend only on the state and the creation instant,
        which a batch shares — and are written with one ``executemany`` (the deadline goes
        to ``change.case_values``, as :meth:`on_change` does); a deadline
        read from the case data (``until``) is computed per case; a change out of a
        state goes through :meth:`on_change`."""
        extras: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        templates: dict[tuple[int, str, dt.datetime], tuple[dt.datetime | None, list[Any]]] = {}
        for change in changes:
            if change.from_state is not None:
                extras.append(self.on_change(conn, change))
                continue
            state = change.workflow.state(change.to_state)
            d = state.deadline
            deadline_at: dt.datetime | None = None
            if d is not None and not state.final:
                tz = change.workflow.timezone or self.default_timezone
                if d.until_field is not None:
                    deadline_at = self.deadline_at(conn, change, d, tz)
                    if deadline_at is not None:
                        rows.extend(self.rows(change, d, deadline_at, tz))
                else:
                    key = (change.definition_id, change.to_state, change.at)
                    template = templates.get(key)
                    if template is None:
                        at = self.deadline_at(conn, change, d, tz)
                        template = (at, self.rows(change, d, at, tz) if at is not None else [])
                        templates[key] = template
                    deadline_at = template[0]
                    rows.extend({**r, "case_id": change.case_id} for r in template[1])
            for duty in self.duties:
                rows.extend(duty(change))
            if deadline_at is not None:
                change.case_values["deadline_at"] = deadline_at  # the case service writes it
            extras.append({"deadline_at": deadline_at.isoformat() if deadline_at else None})
        insert_many(conn, timers, rows)
        if rows:
            wake.written(conn, min(r["due_at"] for r in rows))
        return extras

    def leave(self, conn: Connection, change: Change) -> None:
        """Cancel the old state's timers (pending, or failed and waiting for a retry).
        A deadline or rung already due that no sweep has fired yet still happened
        while the case was in the state: its overdue fact is recorded now (no
        message: the case has moved on)."""
        left = _LEAVE_PREPARED.execute(
            conn, {"leaving_case": change.case_id, "left_at": change.at}
        ).all()
        fired = [row.id for row in left if row.status == "fired"]
        if fired:
            for t in conn.execute(_TIMERS_BY_ID, {"ids": fired}):
                level = (t.rung + 1) if t.rung is not None else 0
                record_overdue(conn, t, change.unit, level, change.at)

    def deadline_at(
        self, conn: Connection, change: Change, d: Deadline, tz: str
    ) -> dt.datetime | None:
        if d.until_field is not None:
            return _until(change.data.get(d.until_field), tz)
        assert d.within is not None
        start = change.at
        if d.from_state is not None:
            first = conn.execute(
                _FIRST_ENTRY, {"case_id": change.case_id, "state": d.from_state}
            ).scalar_one_or_none()
            start = first or change.at
        for warning in self.calendar.warnings_for(start, d.within, tz):
            log.warning("case %s, state %s: %s", change.case_id, change.to_state, warning)
        return self.calendar.due(start, d.within, tz)

    def rows(
        self, change: Change, d: Deadline, deadline_at: dt.datetime, tz: str
    ) -> list[dict[str, Any]]:
        def row(
            kind: str, due: dt.datetime, rung: int | None = None, repeat: int | None = None
        ) -> dict[str, Any]:
            return {
                "case_id": change.case_id,
                "state": change.to_state,
                "case_revision": change.seq,
                "kind": kind,
                "rung": rung,
                "deadline_at": deadline_at,
                "due_at": due,
                "repeat_seconds": repeat,
                "status": "pending",
                "created_at": change.at,
                "subject_id": None,
            }

        out = [row("deadline", deadline_at)]
        wf = change.workflow
        for before in d.remind:
            due = self.reminder_due(
                wf, d, self.calendar.before(deadline_at, before, tz), deadline_at
            )
            if due is not None:
                out.append(row("reminder", due))
        if d.remind_every is not None and d.remind_every.seconds > 0:
            first = change.at + dt.timedelta(seconds=d.remind_every.seconds)
            due = self.reminder_due(wf, d, first, deadline_at)
            if due is not None:
                out.append(row("reminder", due, repeat=d.remind_every.seconds))
        for i, rung in enumerate(d.escalate):
            out.append(row("escalation", self.after(deadline_at, rung.after, tz), rung=i))
        return out

    def reminder_due(
        self, wf: Workflow, d: Deadline, nominal: dt.datetime, deadline_at: dt.datetime
    ) -> dt.datetime | None:
        """When a reminder nominally at *nominal* is delivered; None: not at all."""
        due = nominal
        hours = self.office_hours_of(wf)
        urgent = d.within is not None and d.within.kind == "exact" and d.within.seconds < 86400
        if hours is not None and not hours.always and not urgent:
            working = d.within is not None and d.within.kind == "working_days"
            tz = wf.timezone or self.default_timezone
            due = next_office_start(
                nominal, hours, tz, self.calendar.is_working_day if working else None
            )
        return due if due < deadline_at else None

    def office_hours_of(self, wf: Workflow) -> OfficeHours | None:
        return wf.reminders.office_hours if wf.reminders is not None else self.office_hours

    def after(self, deadline_at: dt.datetime, span: Duration, tz: str) -> dt.datetime:
        if span.kind == "exact":
            return deadline_at + dt.timedelta(seconds=span.seconds)
        return self.calendar.due(deadline_at, span, tz)


def _until(value: Any, tz: str) -> dt.datetime | None:
    """A date field means the end of that day (24:00 local); a datetime is itself."""
    if value is None:
        return None
    text = str(value)
    if len(text) == 10:
        day = dt.date.fromisoformat(text) + dt.timedelta(days=1)
        return dt.datetime.combine(day, dt.time(0), ZoneInfo(tz)).astimezone(dt.UTC)
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def next_office_start(
    moment: dt.datetime,
    hours: OfficeHours,
    tz: str,
    is_working_day: Callable[[dt.date], bool] | None = None,
) -> dt.datetime:
    """*moment* if it is within office hours (on a working day, when asked), else the
    next start of office hours (on the next working day, when asked); in UTC."""
    zone = ZoneInfo(tz)
    local = moment.astimezone(zone)
    day = local.date()
    second = local.hour * 3600 + local.minute * 60 + local.second

    def open_on(day: dt.date) -> bool:
        return is_working_day is None or is_working_day(day)

    if open_on(day) and hours.contains(second):
        return moment
    if not (open_on(day) and second < hours.start):
        day += dt.timedelta(days=1)
        for _ in range(366):  # a year without a working day is a broken calendar
            if open_on(day):
                break
            day += dt.timedelta(days=1)
    start = dt.datetime.combine(day, dt.time(0), zone) + dt.timedelta(seconds=hours.start)
    return start.astimezone(dt.UTC)
