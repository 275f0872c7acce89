"""Deadlines of duties: a countersign party, a transfer, an acknowledgement, a supervision.

A duty has the same deadline block as a state (``within``, ``remind``,
``escalate``; docs/workflow-format.md), counted on the same working-day
calendar, and its rows live in the same ``timers`` table, so the same sweep
fires them exactly once across processes.  A duty's timer has the kind
``<duty>.deadline``, ``<duty>.reminder`` or ``<duty>.escalation`` and the id of
its duty row in ``subject_id``; each duty kind registers a :class:`DutyKind`
that says where its rows are and whom to tell.

Firing (in the sweep's transaction, in a savepoint of its own): a duty that
is no longer open (signed, accepted, answered, cancelled) or whose case closed
fires nothing (``stale: …``); otherwise

- ``reminder``: a notification to the duty's recipients (template
  :attr:`DutyKind.reminder_template`); a repeating one schedules its next
  occurrence before the deadline;
- ``deadline``: an overdue fact with ``duty`` = the kind and ``person_id`` =
  the person answerable (when one is) — what the accountability register counts;
- ``escalation``: the rung's notification (its ``notify`` roles, its template
  or :attr:`DutyKind.overdue_template`) and an overdue fact at level rung + 1.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, insert, select

from engine.calendars import WorkingCalendar
from engine.cases.catalog import Catalog
from engine.definitions import Deadline, Workflow
from engine.errors import TimerError
from engine.store.tables import cases, overdue_facts, timers
from engine.timers import wake
from notifications.outbox import enqueue

__all__ = ["DutyKind", "DutyTimers", "Recipients"]

SUFFIXES = ("deadline", "reminder", "escalation")


@dataclass(frozen=True)
class Recipients:
    """Whom a duty's notice goes to: *roles* (``LEVEL.ROLE``, or ``person:ID``)
    resolved on the chain of *unit* (None: the case's unit)."""

    roles: tuple[str, ...]
    unit: str | None = None


@dataclass(frozen=True)
class DutyKind:
    name: str  # "party": timer kinds party.deadline, party.reminder, party.escalation
    table: Table  # has id, case_id, status, deadline_at
    open_status: str  # the status of a duty still waiting ("pending", "open", …)
    # The duty's deadline block, from the case's workflow and the duty row.
    deadline_of: Callable[[Workflow, Any], Deadline | None]
    recipients: Callable[[Connection, Any, Any], Recipients]  # (conn, duty row, case row)
    reminder_template: str
    overdue_template: str
    # The person answerable for the duty when it goes overdue (an assignee), if any.
    person_of: Callable[[Connection, Any, Any], str | None] = lambda conn, duty, case: None
    # Why an open duty no longer waits, read from its case (a supervision answered by
    # the case moving on), or None: it still waits.
    settled: Callable[[Any, Any], str | None] = lambda duty, case: None


class DutyTimers:
    """Writes a duty's timer rows and fires them (a handler of the timer sweep)."""

    def __init__(
        self, catalog: Catalog, calendar: WorkingCalendar, default_timezone: str = "Asia/Shanghai"
    ) -> None:
        self.catalog = catalog
        self.calendar = calendar
        self.default_timezone = default_timezone
        self.kinds: dict[str, DutyKind] = {}

    def register(self, kind: DutyKind, handlers: dict[str, Any]) -> None:
        """Know *kind* and route its three timer kinds to :meth:`fire` in *handlers*
        (the sweep's ``TimerService.handlers``)."""
        self.kinds[kind.name] = kind
        for suffix in SUFFIXES:
            handlers[f"{kind.name}.{suffix}"] = self.fire

    # -- writing ----------------------------------------------------------
    def due(self, wf: Workflow, d: Deadline, start: dt.datetime) -> dt.datetime:
        """The deadline of a duty that starts at *start*."""
        if d.within is None:
            raise TimerError("a duty's deadline needs 'within'")
        return self.calendar.due(start, d.within, self._tz(wf))

    def schedule(
        self,
        conn: Connection,
        kind: str,
        subject_id: int,
        *,
        case_id: str,
        state: str,
        revision: int,
        wf: Workflow,
        d: Deadline,
        start: dt.datetime,
        deadline_at: dt.datetime | None = None,
    ) -> dt.datetime:
        """Write the timer rows of duty *subject_id* of *kind* (its deadline counted from
        *start*, or *deadline_at* when given); returns the deadline."""
        at = deadline_at or self.due(wf, d, start)
        rows = self.rows(
            kind,
            subject_id,
            case_id=case_id,
            state=state,
            revision=revision,
            wf=wf,
            d=d,
            start=start,
            deadline_at=at,
        )
        conn.execute(insert(timers), rows)
        wake.written(conn, min(r["due_at"] for r in rows))
        return at

    def rows(
        self,
        kind: str,
        subject_id: int,
        *,
        case_id: str,
        state: str,
        revision: int,
        wf: Workflow,
        d: Deadline,
        start: dt.datetime,
        deadline_at: dt.datetime,
    ) -> list[dict[str, Any]]:
        tz = self._tz(wf)

        def row(
            suffix: str, due: dt.datetime, rung: int | None = None, repeat: int | None = None
        ) -> dict[str, Any]:
            return {
                "case_id": case_id,
                "state": state,
                "case_revision": revision,
                "kind": f"{kind}.{suffix}",
                "rung": rung,
                "deadline_at": deadline_at,
                "due_at": due,
                "repeat_seconds": repeat,
                "status": "pending",
                "created_at": start,
                "subject_id": subject_id,
            }

        out = [row("deadline", deadline_at)]
        for before in d.remind:
            due = self.calendar.before(deadline_at, before, tz)
            if start < due < deadline_at:
                out.append(row("reminder", due))
        if d.remind_every is not None and d.remind_every.seconds > 0:
            first = start + dt.timedelta(seconds=d.remind_every.seconds)
            if first < deadline_at:
                out.append(row("reminder", first, repeat=d.remind_every.seconds))
        for i, rung in enumerate(d.escalate):
            out.append(row("escalation", self._after(deadline_at, rung, tz), rung=i))
        return out

    def cancel(self, conn: Connection, kind: str, subject_ids: Sequence[int]) -> None:
        """Cancel the waiting timers of these duties (answered before their deadline)."""
        if not subject_ids:
            return
        t = timers.c
        conn.execute(
            timers.update()
            .where(
                t.subject_id.in_(list(subject_ids)),
                t.kind.in_([f"{kind}.{s}" for s in SUFFIXES]),
                (t.status == "pending") | (t.status == "failed"),
            )
            .values(status="cancelled")
        )

    # -- firing -----------------------------------------------------------
    def fire(self, conn: Connection, timer: Any, now: dt.datetime) -> str:
        """Fire one duty timer (the sweep calls it in a savepoint); returns its detail."""
        name, _, suffix = str(timer.kind).partition(".")
        kind = self.kinds.get(name)
        if kind is None or suffix not in SUFFIXES:
            raise TimerError(f"timer {timer.id}: no duty kind {timer.kind!r}", timer=timer.id)
        duty = conn.execute(
            select(kind.table).where(kind.table.c.id == timer.subject_id)
        ).one_or_none()
        if duty is None:
            return f"stale: {name} {timer.subject_id} is gone"
        if duty.status != kind.open_status:
            return f"stale: {name} {duty.id} is {duty.status}"
        case = conn.execute(select(cases).where(cases.c.id == duty.case_id)).one()
        if case.closed_at is not None:
            return f"stale: case {case.id} is closed"
        settled = kind.settled(duty, case)
        if settled is not None:
            return f"stale: {settled}"
        wf = self._workflow(conn, case)
        title = wf.state(timer.state).title if wf.has_state(timer.state) else timer.state
        context = {
            "duty": {
                "kind": name,
                "id": duty.id,
                "due": timer.deadline_at.isoformat(),
                "state": timer.state,
                "state_title": title,
                "rung": timer.rung,
            },
            "deadline": {
                "due": timer.deadline_at.isoformat(),
                "state": timer.state,
                "state_title": title,
                "rung": timer.rung,
                "timer_due": timer.due_at.isoformat(),
            },
            "snapshot": {
                "state": case.state,
                "data": case.data,
                "escalation_level": case.escalation_level,
            },
        }
        if suffix == "reminder":
            if now >= timer.deadline_at:
                return "skipped: deadline passed"
            who = kind.recipients(conn, duty, case)
            self._notify(conn, timer, case, who, "reminder", kind.reminder_template, context, now)
            self._repeat(conn, timer, now)
            return f"{name} reminder queued"
        person = kind.person_of(conn, duty, case)
        if suffix == "deadline":
            self._fact(conn, timer, case, name, person, 0, now)
            return f"{name} deadline passed"
        d = kind.deadline_of(wf, duty)
        rungs = d.escalate if d is not None else ()
        if timer.rung is None or not 0 <= timer.rung < len(rungs):
            raise TimerError(
                f"timer {timer.id}: {name} {duty.id} has no escalation rung {timer.rung}",
                timer=timer.id,
            )
        rung = rungs[timer.rung]
        who = Recipients(tuple(str(r) for r in rung.notify), kind.recipients(conn, duty, case).unit)
        template = rung.template or kind.overdue_template
        self._notify(conn, timer, case, who, "escalation", template, context, now)
        level = timer.rung + 1
        self._fact(conn, timer, case, name, person, level, now)
        return f"{name} escalated to level {level}"

    def _notify(
        self,
        conn: Connection,
        timer: Any,
        case: Any,
        who: Recipients,
        kind: str,
        template: str,
        context: dict[str, Any],
        now: dt.datetime,
    ) -> None:
        enqueue(
            conn,
            case_id=case.id,
            unit_code=who.unit,
            kind=kind,
            roles=who.roles,
            template=template,
            context=context,
            dedupe_key=f"timer:{timer.id}",
            at=now,
        )

    def _fact(
        self,
        conn: Connection,
        timer: Any,
        case: Any,
        duty: str,
        person: str | None,
        level: int,
        now: dt.datetime,
    ) -> None:
        conn.execute(
            insert(overdue_facts).values(
                case_id=case.id,
                unit_code=case.unit_code,
                state=timer.state,
                deadline_at=timer.deadline_at,
                rung=timer.rung,
                level=level,
                recorded_at=now,
                timer_id=timer.id,
                duty=duty,
                person_id=person,
            )
        )

    def _repeat(self, conn: Connection, timer: Any, now: dt.datetime) -> None:
        if not timer.repeat_seconds:
            return
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
                kind=timer.kind,
                rung=None,
                deadline_at=timer.deadline_at,
                due_at=following,
                repeat_seconds=timer.repeat_seconds,
                status="pending",
                created_at=now,
                subject_id=timer.subject_id,
            )
        )
        wake.written(conn, following)

    def _after(self, deadline_at: dt.datetime, rung: Any, tz: str) -> dt.datetime:
        if rung.after.kind == "exact":
            return deadline_at + dt.timedelta(seconds=rung.after.seconds)
        return self.calendar.due(deadline_at, rung.after, tz)

    def _tz(self, wf: Workflow) -> str:
        return wf.timezone or self.default_timezone

    def _workflow(self, conn: Connection, case: Any) -> Workflow:
        return self.catalog.compiled(conn, case.definition_id).workflow
