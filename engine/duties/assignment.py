"""Acknowledgement (签收) and assignment: who took a case in a state visit.

When a case enters a state that declares ``ack:`` (docs/workflow-format.md), it is
offered to the holders of the roles that can act there (the roles of its outgoing
transitions, the system aside) on the case's chain; one of them acknowledges it
(:meth:`Assignments.ack`) and becomes its assignee.  An assigner (``assigners:``,
default every ``LEVEL.leader`` on the chain) may give it to, or take it from,
anyone who can act (:meth:`Assignments.assign`); the new assignee is told.

Cost on the event path: entering a state with ``ack:`` adds only its timer rows to
the statement that writes the state's own (:attr:`TimerSchedule.duties`), with
``subject_id`` = minus the entering revision; leaving cancels them with the state's
own.  The ``case_assignments`` row of a visit is written when someone acknowledges
or is assigned, or when the acknowledgement deadline fires with nobody (status
``offered``; the duty timer is then re-pointed at the row).  A visit is identified
by (``state``, ``offered_at`` = the case's ``state_entered_at``), so a row of an
earlier visit is never read as current (it is cancelled when the next one is written).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Mapping
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from engine.cases.records import CaseView
from engine.cases.service import CaseService, Change
from engine.definitions import Deadline, Workflow
from engine.definitions.model import SYSTEM_ROLE
from engine.duties.actions import ActionContext, CaseActions
from engine.duties.timers import SUFFIXES, DutyKind, DutyTimers, Recipients
from engine.errors import AlreadyAssigned, InvalidData, NotPermitted, TriggerNotAllowed
from engine.grid.visibility import ADMIN, Viewer
from engine.store import connection
from engine.store.db import read_only
from engine.store.tables import case_assignments, cases, history, timers
from notifications.outbox import enqueue

__all__ = ["ACK", "ASSIGN", "Assignments", "actor_roles", "assigner_allowed", "current_visit"]

ACK = "ack"
ASSIGN = "assign"
KIND = "ack"  # the duty kind: timers ack.deadline, ack.reminder, ack.escalation
ACK_KINDS = tuple(f"{KIND}.{s}" for s in SUFFIXES)
LEADER = "leader"


def actor_roles(wf: Workflow, state: str) -> set[str] | None:
    """``LEVEL.ROLE`` that can act in *state* (its transitions' roles, the system aside);
    None: anybody with a role on the chain (a transition that names no roles)."""
    found: set[str] = set()
    for t in wf.transitions_from(state):
        if not t.roles:
            return None
        found |= {str(r) for r in t.roles if str(r) != SYSTEM_ROLE}
    return found


def can_act(wf: Workflow, state: str, held: Collection[str]) -> bool:
    roles = actor_roles(wf, state)
    mine = set(held) - {SYSTEM_ROLE}
    return bool(mine) if roles is None else bool(mine & roles)


def assigner_allowed(wf: Workflow, held: Collection[str]) -> bool:
    if wf.assigners is not None:
        return bool(set(held) & {str(r) for r in wf.assigners})
    return any(r.rpartition(".")[2] == LEADER for r in held)


def current_visit(conn: Connection, case: Any) -> Any:
    """The assignment row of the case's current state visit, or None."""
    a = case_assignments.c
    return conn.execute(
        select(case_assignments).where(
            a.case_id == case.id,
            a.state == case.state,
            a.offered_at == case.state_entered_at,
            a.status != "cancelled",
        )
    ).one_or_none()


def as_dict(row: Any, wf: Workflow | None = None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "id": row.id,
        "state": row.state,
        "status": row.status,
        "assignee": row.assignee,
        "assigned_by": row.assigned_by,
        "offered_at": row.offered_at.isoformat(),
        "deadline_at": row.deadline_at.isoformat() if row.deadline_at else None,
        "acked_at": row.acked_at.isoformat() if row.acked_at else None,
    }


class Assignments:
    """签收 and 指派 of cases, and the acknowledgement deadline's timers."""

    def __init__(
        self,
        engine: Engine,
        cases_service: CaseService,
        duty_timers: DutyTimers,
        handlers: dict[str, Any],
    ) -> None:
        self.engine = engine
        self.cases = cases_service
        self.actions = CaseActions(cases_service)
        self.duty_timers = duty_timers
        duty_timers.register(
            DutyKind(
                name=KIND,
                table=case_assignments,
                open_status="offered",
                deadline_of=lambda wf, duty: (
                    wf.state(duty.state).ack if wf.has_state(duty.state) else None
                ),
                recipients=self._recipients,
                reminder_template="ack_reminder",
                overdue_template="ack_overdue",
                person_of=lambda conn, duty, case: duty.assignee,
            ),
            handlers,
        )
        for kind in ACK_KINDS:  # a visit's timers name it by -entered_seq until its row exists
            handlers[kind] = self.fire

    # -- the event path: timer rows of a state's acknowledgement -----------------
    def timer_rows(self, change: Change) -> list[dict[str, Any]]:
        """For :attr:`TimerSchedule.duties`: nothing unless the state entered has ``ack:``."""
        state = change.workflow.state(change.to_state)
        d = state.ack
        if d is None or state.final or d.within is None:
            return []
        at = self.duty_timers.due(change.workflow, d, change.at)
        return self.duty_timers.rows(
            KIND,
            -change.seq,
            case_id=change.case_id,
            state=change.to_state,
            revision=change.seq,
            wf=change.workflow,
            d=d,
            start=change.at,
            deadline_at=at,
        )

    def fire(self, conn: Connection, timer: Any, now: dt.datetime) -> str:
        """An acknowledgement timer: while nobody took the visit, its row is written
        (offered) and the visit's timers re-pointed at it; then the duty fires as any."""
        if timer.subject_id is not None and timer.subject_id < 0:
            case = conn.execute(select(cases).where(cases.c.id == timer.case_id)).one()
            if case.state != timer.state or case.closed_at is not None:
                return f"stale: case {case.id} left {timer.state}"
            row = current_visit(conn, case)
            if row is None:
                row_id = self._insert(
                    conn, case, -timer.subject_id, "offered", None, None, None, timer.deadline_at
                )
            else:
                row_id = row.id
            conn.execute(
                update(timers)
                .where(timers.c.case_id == case.id, timers.c.subject_id == timer.subject_id)
                .values(subject_id=row_id)
            )
            timer = SimpleNamespace(**{**dict(timer._mapping), "subject_id": row_id})
        return self.duty_timers.fire(conn, timer, now)

    def _recipients(self, conn: Connection, duty: Any, case: Any) -> Recipients:
        wf = self.cases.catalog.compiled(conn, case.definition_id).workflow
        roles = actor_roles(wf, duty.state)
        if roles is None:
            roles = {str(r) for r in wf.roles}
        return Recipients(tuple(sorted(roles)))

    # -- actions -----------------------------------------------------------------
    def ack(
        self, case_id: str, actor: str, *, key: str | None = None, viewer: Viewer | str = ADMIN
    ) -> CaseView:
        """签收: *actor*, who can act in the case's state, becomes its assignee."""
        if key is None:
            mine = self.describe(case_id, viewer=viewer)["assignment"]
            if mine is not None and mine["assignee"] == actor and mine["acked_at"]:
                return self._with(self.cases.get_case(case_id, viewer=viewer), mine)
        view = self.actions.act(case_id, actor, ACK, {}, self._ack, key=key, viewer=viewer)
        return self._with(view, self.describe(case_id, viewer=viewer)["assignment"])

    def _ack(self, ctx: ActionContext) -> Mapping[str, Any]:
        case, wf = ctx.case, ctx.workflow
        self._open(case)
        if not can_act(wf, case.state, ctx.held):
            needed = sorted(actor_roles(wf, case.state) or ())
            raise NotPermitted(
                ctx.actor, f"acknowledge the case in state {case.state!r}", case.unit_code, needed
            )
        row = current_visit(ctx.conn, case)
        if row is not None and row.assignee not in (None, ctx.actor):
            raise AlreadyAssigned(case.id, case.state, row.assignee)
        values = {"status": "acked", "assignee": ctx.actor, "acked_at": ctx.now}
        if row is None:
            row_id = self._insert(
                ctx.conn,
                case,
                self._entered_seq(ctx.conn, case),
                "acked",
                ctx.actor,
                None,
                ctx.now,
                self._deadline(wf, case),
            )
        else:
            row_id = row.id
            ctx.conn.execute(
                update(case_assignments).where(case_assignments.c.id == row_id).values(**values)
            )
        self._settle(ctx.conn, case, row_id)
        return {"assignment": row_id, "assignee": ctx.actor, "state": case.state}

    def assign(
        self,
        case_id: str,
        to: str,
        actor: str,
        *,
        key: str | None = None,
        viewer: Viewer | str = ADMIN,
    ) -> CaseView:
        """指派: an assigner gives the case (in its current state) to *to*."""

        def work(ctx: ActionContext) -> Mapping[str, Any]:
            return self._assign(ctx, to)

        view = self.actions.act(case_id, actor, ASSIGN, {"to": to}, work, key=key, viewer=viewer)
        return self._with(view, self.describe(case_id, viewer=viewer)["assignment"])

    def _assign(self, ctx: ActionContext, to: str) -> Mapping[str, Any]:
        case, wf = ctx.case, ctx.workflow
        self._open(case)
        if not assigner_allowed(wf, ctx.held):
            needed = [str(r) for r in wf.assigners] if wf.assigners is not None else []
            raise NotPermitted(
                ctx.actor,
                "assign the case",
                case.unit_code,
                needed or ["LEVEL.leader"],
                "only an assigner may assign",
            )
        try:
            theirs = ctx.roles_of(to, "be assigned the case")
        except NotPermitted:
            raise InvalidData({"to": f"{to!r} is not an active person of the grid"}) from None
        if not can_act(wf, case.state, theirs):
            wanted = ", ".join(sorted(actor_roles(wf, case.state) or ())) or "any role"
            raise InvalidData(
                {
                    "to": f"{to!r} cannot act in state {case.state!r} on this case's chain "
                    f"(it needs one of: {wanted})"
                }
            )
        row = current_visit(ctx.conn, case)
        previous = row.assignee if row is not None else None
        if row is None:
            row_id = self._insert(
                ctx.conn,
                case,
                self._entered_seq(ctx.conn, case),
                "assigned",
                to,
                ctx.actor,
                None,
                self._deadline(wf, case),
            )
        else:
            row_id = row.id
            same = previous == to and row.acked_at is not None
            ctx.conn.execute(
                update(case_assignments)
                .where(case_assignments.c.id == row_id)
                .values(
                    status="acked" if same else "assigned",
                    assignee=to,
                    assigned_by=ctx.actor,
                    acked_at=row.acked_at if same else None,
                )
            )
        self._settle(ctx.conn, case, row_id)
        state = wf.state(case.state)
        enqueue(
            ctx.conn,
            case_id=case.id,
            kind="transition",
            roles=[f"person:{to}"],
            template="case_assigned",
            context={
                "event": {
                    "trigger": ASSIGN,
                    "title": "指派",
                    "actor": ctx.actor,
                    "payload": {"assignee": to, "state": case.state},
                    "from": case.state,
                    "to": case.state,
                    "seq": case.revision + 1,
                },
                "snapshot": {
                    "state": case.state,
                    "data": case.data,
                    "escalation_level": case.escalation_level,
                },
            },
            dedupe_key=f"{case.id}:{case.revision + 1}:assign",
            at=ctx.now,
        )
        return {
            "assignment": row_id,
            "assignee": to,
            "previous": previous,
            "state": case.state,
            "state_title": state.title,
        }

    # -- reading -----------------------------------------------------------------
    def describe(self, case_id: str, *, viewer: Viewer | str = ADMIN) -> dict[str, Any]:
        """``{"assignment": …}``: the current state visit's assignee and acknowledgement
        (None: nobody yet); with ``ack_due`` when the state asks for an acknowledgement."""
        with connection(read_only(self.engine)) as conn:
            view = self.cases._get(conn, case_id, viewer)
            case = conn.execute(select(cases).where(cases.c.id == view.id)).one()
            row = current_visit(conn, case)
            wf = self.cases.catalog.compiled(conn, case.definition_id).workflow
            out = as_dict(row)
            deadline = self._deadline(wf, case)
            if out is None and deadline is not None and case.closed_at is None:
                out = {
                    "id": None,
                    "state": case.state,
                    "status": "offered",
                    "assignee": None,
                    "assigned_by": None,
                    "offered_at": case.state_entered_at.isoformat(),
                    "deadline_at": deadline.isoformat(),
                    "acked_at": None,
                }
            return {"assignment": out}

    # -- helpers -----------------------------------------------------------------
    def _with(self, view: CaseView, assignment: dict[str, Any] | None) -> CaseView:
        return dataclasses.replace(view, extra={**view.extra, "assignment": assignment})

    def _open(self, case: Any) -> None:
        if case.closed_at is not None:
            raise TriggerNotAllowed(ACK, case.state, [])

    def _deadline(self, wf: Workflow, case: Any) -> dt.datetime | None:
        state = wf.state(case.state) if wf.has_state(case.state) else None
        d: Deadline | None = state.ack if state is not None else None
        if d is None or d.within is None:
            return None
        return self.duty_timers.due(wf, d, case.state_entered_at)

    def _entered_seq(self, conn: Connection, case: Any) -> int:
        """The revision at which the case entered its current state visit."""
        h = history.c
        seq = conn.execute(
            select(func.min(h.seq)).where(
                h.case_id == case.id, h.at == case.state_entered_at, h.to_state == case.state
            )
        ).scalar_one_or_none()
        return int(seq) if seq is not None else int(case.revision)

    def _insert(
        self,
        conn: Connection,
        case: Any,
        entered_seq: int,
        status: str,
        assignee: str | None,
        assigned_by: str | None,
        acked_at: dt.datetime | None,
        deadline_at: dt.datetime | None,
    ) -> int:
        row_id: int = conn.execute(
            insert(case_assignments)
            .values(
                case_id=case.id,
                state=case.state,
                entered_seq=entered_seq,
                status=status,
                assignee=assignee,
                assigned_by=assigned_by,
                offered_at=case.state_entered_at,
                deadline_at=deadline_at,
                acked_at=acked_at,
            )
            .returning(case_assignments.c.id)
        ).scalar_one()
        return row_id

    def _settle(self, conn: Connection, case: Any, row_id: int) -> None:
        """The visit has its assignee: its acknowledgement timers stop, and rows of earlier
        visits still offered are cancelled (the lazy half of leaving a state)."""
        t = timers.c
        conn.execute(
            update(timers)
            .where(
                t.case_id == case.id,
                t.kind.in_(ACK_KINDS),
                (t.status == "pending") | (t.status == "failed"),
            )
            .values(status="cancelled")
        )
        a = case_assignments.c
        conn.execute(
            update(case_assignments)
            .where(a.case_id == case.id, a.id != row_id, a.status == "offered")
            .values(status="cancelled")
        )
