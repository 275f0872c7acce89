"""Supervision notices (督办): a higher level tells the unit of an open case to act.

A holder of one of the workflow's ``supervision.roles`` on a unit *strictly above*
the case's unit issues a notice with a note and a deadline (the block's
``deadline.within``, or the notice's own).  The responsible leader is told
(``supervision.notify``; default: the leader of the case's own level — of the
village for a case of a group, which has no leader of its own).  The notice is
answered either

- by the case moving on: any state change after the notice was issued.  Nothing
  is written on the event's path for this (the hot path stays as it is): the
  notice's timers are cancelled with the state's when the case leaves it, and a
  notice still marked ``open`` whose case has left its state (or re-entered it
  since) is marked ``answered``/``moved`` when it is next read or replied to; or
- by a written reply (``supervise_reply``) from someone on the case's own unit or
  one of the roles the notice was addressed to: the issuer is told.

Unanswered, it runs its deadline block like any duty (engine/duties/timers.py):
reminders to the notified roles, an overdue fact with ``duty = 'supervision'`` at
the deadline, the rungs' notifications.  Issue and reply are history entries
(``supervise``, ``supervise_reply``) naming the notice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from engine.cases.service import CaseService
from engine.definitions import Deadline, Workflow
from engine.definitions.model import DEFAULT_MAX_LENGTH, LEVELS
from engine.duties.actions import ActionContext, CaseActions
from engine.duties.timers import DutyKind, DutyTimers, Recipients
from engine.errors import (
    DurationError,
    InvalidData,
    NotPermitted,
    SupervisionRefused,
    UnknownSupervision,
)
from engine.grid.visibility import ADMIN, Viewer
from engine.store import connection, transaction
from engine.store.tables import cases, history, supervisions, units
from engine.yamlkit.durations import Duration, parse_duration
from notifications.outbox import enqueue

__all__ = ["ISSUE", "KIND", "REPLY", "SupervisionView", "Supervisions", "moved_on"]

KIND = "supervision"  # duty timers supervision.deadline / .reminder / .escalation
ISSUE = "supervise"  # history triggers
REPLY = "supervise_reply"


@dataclass(frozen=True)
class SupervisionView:
    id: int
    case_id: str
    state: str
    unit: str
    issued_by: str
    issued_at: dt.datetime
    note: str
    deadline_at: dt.datetime
    status: str  # open | answered | cancelled
    answer: str | None  # moved | replied
    reply: str | None
    answered_by: str | None
    answered_at: dt.datetime | None

    @property
    def label(self) -> str:
        """``open``, ``answered: replied``, ``answered: moved on``."""
        if self.status != "answered":
            return self.status
        return "answered: moved on" if self.answer == "moved" else f"answered: {self.answer}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "case": self.case_id,
            "state": self.state,
            "unit": self.unit,
            "issued_by": self.issued_by,
            "issued_at": self.issued_at.isoformat(),
            "note": self.note,
            "deadline_at": self.deadline_at.isoformat(),
            "status": self.status,
            "answer": self.answer,
            "reply": self.reply,
            "answered_by": self.answered_by,
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "label": self.label,
        }


def moved_on(duty: Any, case: Any) -> bool:
    """Whether the case left the state the notice was issued in (or re-entered it)."""
    return bool(case.state != duty.state or case.state_entered_at > duty.issued_at)


def _settled(duty: Any, case: Any) -> str | None:
    return f"supervision {duty.id} answered: the case moved on" if moved_on(duty, case) else None


def leader_roles(level: str) -> tuple[str, ...]:
    """The default addressee: the leader of the case's level (a group's: its village's)."""
    return ("village.leader",) if level == "group" else (f"{level}.leader",)


class Supervisions:
    """Issue, reply to and read supervision notices (``app.supervision``)."""

    def __init__(self, cases_service: CaseService, duty_timers: DutyTimers, handlers: Any) -> None:
        self.cases = cases_service
        self.actions = CaseActions(cases_service)
        self.duty_timers = duty_timers
        duty_timers.register(
            DutyKind(
                name=KIND,
                table=supervisions,
                open_status="open",
                deadline_of=self._deadline_of,
                recipients=self._recipients,
                reminder_template="supervision_reminder",
                overdue_template="supervision_overdue",
                settled=_settled,
            ),
            handlers,
        )

    # -- issuing -----------------------------------------------------------
    def supervise(
        self,
        case_id: str,
        actor: str,
        note: str,
        within: Duration | str | None = None,
        *,
        key: str | None = None,
        viewer: Viewer | str = ADMIN,
    ) -> tuple[Any, SupervisionView]:
        """Issue a notice on the case; returns the case view and the notice."""
        text = _text("note", note)
        duration = _within(within)
        request = {"note": text, "within": str(duration) if duration is not None else None}
        issued: list[int] = []

        def work(ctx: ActionContext) -> Mapping[str, Any]:
            payload = self._issue(ctx, text, duration)
            issued.append(int(payload["supervision"]))
            return payload

        view = self.actions.act(case_id, actor, ISSUE, request, work, key=key, viewer=viewer)
        return view, self._after(case_id, issued, ISSUE, actor, view)

    def _issue(self, ctx: ActionContext, note: str, within: Duration | None) -> dict[str, Any]:
        case, wf = ctx.case, ctx.workflow
        sup = wf.supervision
        if sup is None:
            raise SupervisionRefused(
                case.id, f"workflow {wf.id!r} takes no supervision (no 'supervision:' block)"
            )
        if case.closed_at is not None:
            raise SupervisionRefused(case.id, "the case is closed")
        level = _level(ctx.conn, case.unit_code)
        above = [str(r) for r in sup.roles if r.level in LEVELS and _above(r.level, level)]
        if not ctx.held & set(above):
            raise NotPermitted(
                ctx.actor,
                ISSUE,
                case.unit_code,
                above,
                "supervision comes from a unit above the case's",
            )
        base = sup.deadline or Deadline()
        use = within or base.within
        if use is None:
            raise InvalidData({"within": "required: the workflow's supervision has no default"})
        d = Deadline(
            within=use,
            remind=base.remind,
            remind_every=base.remind_every,
            escalate=base.escalate,
        )
        deadline_at = self.duty_timers.due(wf, d, ctx.now)
        sid = int(
            ctx.conn.execute(
                insert(supervisions)
                .values(
                    case_id=case.id,
                    state=case.state,
                    unit_code=case.unit_code,
                    issued_by=ctx.actor,
                    issued_at=ctx.now,
                    note=note,
                    deadline_at=deadline_at,
                    status="open",
                )
                .returning(supervisions.c.id)
            ).scalar_one()
        )
        self.duty_timers.schedule(
            ctx.conn,
            KIND,
            sid,
            case_id=case.id,
            state=case.state,
            revision=case.revision + 1,  # the revision of the history entry that follows
            wf=wf,
            d=d,
            start=ctx.now,
            deadline_at=deadline_at,
        )
        notify = [str(r) for r in sup.notify] or list(leader_roles(level))
        self._tell(
            ctx, notify, "supervision_issued", f"supervision:{sid}:issued", ISSUE, note, deadline_at
        )
        return {
            "supervision": sid,
            "note": note,
            "within": str(use),
            "deadline_at": deadline_at.isoformat(),
            "notify": notify,
        }

    # -- replying ----------------------------------------------------------
    def reply(
        self,
        case_id: str,
        actor: str,
        text: str,
        supervision_id: int | None = None,
        *,
        key: str | None = None,
        viewer: Viewer | str = ADMIN,
    ) -> tuple[Any, SupervisionView]:
        """Answer a notice in writing (*supervision_id* None: the case's only open one)."""
        body = _text("note", text)
        request = {"supervision": supervision_id, "note": body}
        answered: list[int] = []

        def work(ctx: ActionContext) -> Mapping[str, Any]:
            payload = self._reply(ctx, body, supervision_id)
            answered.append(int(payload["supervision"]))
            return payload

        view = self.actions.act(case_id, actor, REPLY, request, work, key=key, viewer=viewer)
        return view, self._after(case_id, answered, REPLY, actor, view)

    def _reply(self, ctx: ActionContext, text: str, wanted: int | None) -> dict[str, Any]:
        case = ctx.case
        rows = self._settle(ctx.conn, case, ctx.now)
        if wanted is not None:
            row = next((r for r in rows if r.id == wanted), None)
            if row is None:
                raise UnknownSupervision(case.id, wanted)
        else:
            waiting = [r for r in rows if r.status == "open"]
            if not waiting:
                raise UnknownSupervision(case.id, None)
            if len(waiting) > 1:
                ids = ", ".join(str(r.id) for r in waiting)
                raise SupervisionRefused(
                    case.id, f"several supervisions are open ({ids}): name one with its id"
                )
            row = waiting[0]
        if row.status != "open":
            how = "the case moved on" if row.answer == "moved" else f"by {row.answered_by}"
            raise SupervisionRefused(
                case.id, f"supervision {row.id} is {row.status} already ({how})"
            )
        sup = ctx.workflow.supervision
        level = _level(ctx.conn, case.unit_code)
        addressed = {str(r) for r in sup.notify} if sup and sup.notify else set(leader_roles(level))
        mine = {r for r in ctx.held if r.split(".", 1)[0] == level}
        if not (mine or ctx.held & addressed):
            raise NotPermitted(
                ctx.actor,
                REPLY,
                case.unit_code,
                [*sorted(addressed), f"{level}.*"],
                "a reply comes from the case's own unit or those the notice was addressed to",
            )
        ctx.conn.execute(
            update(supervisions)
            .where(supervisions.c.id == row.id)
            .values(
                status="answered",
                answer="replied",
                reply=text,
                answered_by=ctx.actor,
                answered_at=ctx.now,
            )
        )
        self.duty_timers.cancel(ctx.conn, KIND, [row.id])
        self._tell(
            ctx,
            [f"person:{row.issued_by}"],
            "supervision_replied",
            f"supervision:{row.id}:replied",
            REPLY,
            text,
            row.deadline_at,
        )
        return {"supervision": row.id, "reply": text, "issued_by": row.issued_by}

    # -- reading -----------------------------------------------------------
    def supervisions(self, case_id: str, *, viewer: Viewer | str = ADMIN) -> list[SupervisionView]:
        """The case's notices, oldest first, each with its status as of now (a notice whose
        case moved on is marked answered here)."""
        with transaction(self.cases.engine) as conn:
            self.cases._exists(conn, case_id, viewer)
            case = conn.execute(select(cases).where(cases.c.id == case_id)).one()
            return [_view(r) for r in self._settle(conn, case, self.cases.clock.now())]

    def _settle(self, conn: Connection, case: Any, now: dt.datetime) -> list[Any]:
        """The case's notice rows, marking open ones its moving on answered."""
        s = supervisions.c
        rows = list(
            conn.execute(select(supervisions).where(s.case_id == case.id).order_by(s.id)).all()
        )
        stale = [r for r in rows if r.status == "open" and moved_on(r, case)]
        if not stale:
            return rows
        for r in stale:
            left = _left_at(conn, case.id, r)
            conn.execute(
                update(supervisions)
                .where(s.id == r.id, s.status == "open")
                .values(
                    status="answered", answer="moved", answered_at=left or case.state_entered_at
                )
            )
        return list(
            conn.execute(select(supervisions).where(s.case_id == case.id).order_by(s.id)).all()
        )

    def _after(
        self, case_id: str, ids: list[int], action: str, actor: str, view: Any
    ) -> SupervisionView:
        """The notice the action wrote (on a replay: the one its history entry names)."""
        if ids:
            sid = ids[0]
        else:  # an idempotent replay ran no work: read the entry it answered with
            entries = self.cases.history(case_id)
            sid = next(
                int(e.payload["supervision"])
                for e in reversed(entries)
                if e.trigger == action and e.actor == actor and e.seq <= view.revision
            )
        with connection(self.cases.engine) as conn:
            row = conn.execute(select(supervisions).where(supervisions.c.id == sid)).one()
        return _view(row)

    # -- the duty kind -------------------------------------------------------
    def _deadline_of(self, wf: Workflow, duty: Any) -> Deadline | None:
        return wf.supervision.deadline if wf.supervision is not None else None

    def _recipients(self, conn: Connection, duty: Any, case: Any) -> Recipients:
        wf = self.cases.catalog.compiled(conn, case.definition_id).workflow
        if wf.supervision is not None and wf.supervision.notify:
            return Recipients(tuple(str(r) for r in wf.supervision.notify))
        return Recipients(leader_roles(_level(conn, case.unit_code)))

    def _tell(
        self,
        ctx: ActionContext,
        roles: list[str],
        template: str,
        dedupe: str,
        trigger: str,
        text: str,
        deadline_at: dt.datetime,
    ) -> None:
        case = ctx.case
        title = (
            ctx.workflow.state(case.state).title
            if ctx.workflow.has_state(case.state)
            else case.state
        )
        enqueue(
            ctx.conn,
            case_id=case.id,
            kind="transition",
            roles=roles,
            template=template,
            context={
                "event": {
                    "trigger": trigger,
                    "title": "督办" if trigger == ISSUE else "督办回复",
                    "actor": ctx.actor,
                    "from": case.state,
                    "to": case.state,
                    "seq": case.revision + 1,
                    "payload": {"note": text},
                },
                "deadline": {
                    "due": deadline_at.isoformat(),
                    "state": case.state,
                    "state_title": title,
                    "rung": None,
                },
                "snapshot": {
                    "state": case.state,
                    "data": case.data,
                    "escalation_level": case.escalation_level,
                },
            },
            dedupe_key=dedupe,
            at=ctx.now,
        )


def _left_at(conn: Connection, case_id: str, notice: Any) -> dt.datetime | None:
    """When the case first changed state after the notice's own history entry."""
    h = history.c
    issued = conn.execute(
        select(h.seq, h.payload).where(
            h.case_id == case_id, h.trigger == ISSUE, h.at == notice.issued_at
        )
    ).all()
    seq = next((e.seq for e in issued if e.payload.get(KIND) == notice.id), None)
    if seq is None:
        return None
    at: dt.datetime | None = conn.execute(
        select(func.min(h.at)).where(
            h.case_id == case_id,
            h.seq > seq,
            h.from_state.is_not(None),
            h.from_state != h.to_state,
        )
    ).scalar_one_or_none()
    return at


def _view(row: Any) -> SupervisionView:
    return SupervisionView(
        id=row.id,
        case_id=row.case_id,
        state=row.state,
        unit=row.unit_code,
        issued_by=row.issued_by,
        issued_at=row.issued_at,
        note=row.note,
        deadline_at=row.deadline_at,
        status=row.status,
        answer=row.answer,
        reply=row.reply,
        answered_by=row.answered_by,
        answered_at=row.answered_at,
    )


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidData({name: "required: write what is asked or answered"})
    text = value.strip()
    if "\x00" in text:
        raise InvalidData({name: "holds a NUL character"})
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidData({name: "is not valid Unicode (a lone surrogate)"}) from None
    if len(text) > DEFAULT_MAX_LENGTH:
        raise InvalidData(
            {name: f"{len(text)} characters; at most {DEFAULT_MAX_LENGTH} are allowed"}
        )
    return text


def _within(value: Duration | str | None) -> Duration | None:
    if value is None or isinstance(value, Duration):
        duration = value
    else:
        try:
            duration = parse_duration(value.strip() if isinstance(value, str) else value)
        except DurationError as exc:
            raise InvalidData({"within": str(exc)}) from None
    if duration is not None and duration.seconds <= 0:
        raise InvalidData({"within": "a supervision's deadline must be longer than 0m"})
    return duration


def _level(conn: Connection, unit: str) -> str:
    level: str = conn.execute(select(units.c.level).where(units.c.code == unit)).scalar_one()
    return level


def _above(role_level: str, case_level: str) -> bool:
    if case_level not in LEVELS:
        return False
    return LEVELS.index(role_level) < LEVELS.index(case_level)
