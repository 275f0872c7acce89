"""Transfers (移送/转办): a case sent to another unit, which accepts or returns it.

A state that declares ``transfer:`` (docs/workflow-format.md) lets its senders
send the case to a unit of a declared level (``town``: another town) or to a
declared department (``district.dept_agri``: that role on the district unit of
the case's chain).  The transfer waits in ``case_transfers`` with a deadline
(the duty timers ``transfer.*``: reminder to the receiver, an overdue fact
``duty='transfer'``, the rungs' notices); until it is answered the case shows
both its unit and the pending receiver, the receiver's people can read it, and
every event on the case is refused (:class:`~engine.errors.TransferPending`).

The receiver's holders of an accept role (``accept_roles`` at the receiving
unit itself, or the department's role) accept it — the case's unit becomes the
receiving unit, so visibility and role resolution follow — or return it with a
reason (the case stays where it was).  Each hop is a history entry
(``transfer``, ``transfer_accept``, ``transfer_return``) naming the transfer and
its units.  Accept and return lock the case row, so of two answers to the same
transfer exactly one wins; the other is :class:`~engine.errors.TransferNotPending`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select, update

from engine.cases.records import CaseView
from engine.cases.service import SYSTEM_ACTOR
from engine.definitions import Deadline, Workflow
from engine.definitions.model import LEVELS, SYSTEM_ROLE, RoleRef, StateSpec, TransferRule
from engine.duties.actions import ActionContext, CaseActions
from engine.duties.timers import DutyKind, DutyTimers, Recipients
from engine.errors import (
    InvalidData,
    NotPermitted,
    TransferNotAllowed,
    TransferNotPending,
    TransferPending,
    UnknownCase,
)
from engine.grid.visibility import ADMIN, Viewer, as_viewer, visible_case
from engine.store import connection
from engine.store.db import read_only
from engine.store.tables import case_transfers, cases, people, person_roles, units
from notifications.outbox import enqueue

__all__ = ["KIND", "Transfers"]

KIND = "transfer"
SEND, ACCEPT, RETURN = "transfer", "transfer_accept", "transfer_return"
REASON_LIMIT = 2000
_UNREAD = object()  # a case row read without its pending_transfer column


class Transfers:
    """Send, accept and return transfers; the gate that holds a case while one waits."""

    def __init__(
        self,
        actions: CaseActions,
        duty_timers: DutyTimers,
        handlers: dict[str, Any],
        timezone: str = "Asia/Shanghai",
    ) -> None:
        self.actions = actions
        self.duty_timers = duty_timers
        self.timezone = timezone
        duty_timers.register(
            DutyKind(
                name=KIND,
                table=case_transfers,
                open_status="pending",
                deadline_of=_deadline_of,
                recipients=self._receivers,
                reminder_template="transfer_reminder",
                overdue_template="transfer_overdue",
            ),
            handlers,
        )

    # -- the gate (CaseService.gates) ---------------------------------------
    def check(self, conn: Connection, case: Any, wf: Workflow, trigger: str, actor: str) -> None:
        """Refuse every event (the system's too) while a transfer of the case waits; no
        statement for a state that declares no transfer (none can wait there)."""
        if not wf.has_state(case.state) or wf.state(case.state).transfer is None:
            return
        # the lock read the pending transfer's id (engine/cases/statements.py): only a
        # refusal reads the transfer's row, to name its receiver
        if getattr(case, "pending_transfer", _UNREAD) is None:
            return
        waiting = _pending(conn, case.id)
        if waiting is not None:
            raise TransferPending(case.id, waiting.id, waiting.to_unit, waiting.to_role)

    # -- actions --------------------------------------------------------------
    def transfer(
        self,
        case_id: str,
        to: str,
        actor: str,
        reason: str,
        *,
        key: str | None = None,
        viewer: Viewer | str = ADMIN,
    ) -> CaseView:
        """Send the case to *to*: a unit code of a level the state declares, or a
        declared ``LEVEL.ROLE`` department; *reason* is required."""
        target = (to or "").strip()
        why = _reason(reason)
        if not target:
            raise InvalidData({"to": "is required: a unit code or LEVEL.ROLE"})
        return self.actions.act(
            case_id,
            actor,
            SEND,
            {"to": target, "reason": why},
            lambda ctx: self._send(ctx, target, why),
            key=key,
            viewer=viewer,
        )

    def accept(
        self,
        case_id: str,
        actor: str,
        note: str | None = None,
        *,
        transfer_id: int | None = None,
        key: str | None = None,
        viewer: Viewer | str = ADMIN,
    ) -> CaseView:
        """The receiver takes the case: its unit becomes the receiving unit."""
        text = (note or "").strip() or None
        return self._answer(case_id, actor, ACCEPT, text, transfer_id, key, viewer)

    def return_(
        self,
        case_id: str,
        actor: str,
        reason: str,
        *,
        transfer_id: int | None = None,
        key: str | None = None,
        viewer: Viewer | str = ADMIN,
    ) -> CaseView:
        """The receiver sends the case back (退回) with a reason; its unit stays."""
        return self._answer(case_id, actor, RETURN, _reason(reason), transfer_id, key, viewer)

    # -- reads --------------------------------------------------------------
    def transfers(self, case_id: str, *, viewer: Viewer | str = ADMIN) -> list[dict[str, Any]]:
        """Every hop of the case, oldest first (times in the workflow's time zone)."""
        with connection(read_only(self.actions.cases.engine)) as conn:
            tz = self._case_tz(conn, case_id, viewer)
            rows = conn.execute(
                select(case_transfers)
                .where(case_transfers.c.case_id == case_id)
                .order_by(case_transfers.c.id)
            ).all()
        now = self.actions.clock.now()
        return [_hop(r, tz, now) for r in rows]

    def pending(self, case_id: str, *, viewer: Viewer | str = ADMIN) -> dict[str, Any] | None:
        """The transfer waiting for its receiver, or None (``case show``)."""
        hops = self.transfers(case_id, viewer=viewer)
        return next((h for h in hops if h["status"] == "pending"), None)

    # -- the work of each action, under the case lock -------------------------
    def _send(self, ctx: ActionContext, to: str, reason: str) -> Mapping[str, Any]:
        case, wf = ctx.case, ctx.workflow
        state = wf.state(case.state)
        rule = state.transfer
        if rule is None or case.closed_at is not None:
            raise TransferNotAllowed(case.id, case.state)
        senders = _senders(wf, state, rule)
        if not ctx.held & senders:
            raise NotPermitted(ctx.actor, "transfer the case", case.unit_code, sorted(senders))
        waiting = _pending(ctx.conn, case.id)
        if waiting is not None:
            raise TransferPending(case.id, waiting.id, waiting.to_unit, waiting.to_role)
        to_unit, to_role = self._receiver(ctx.conn, case, rule, to)
        now = ctx.now
        deadline = rule.deadline
        due = self.duty_timers.due(wf, deadline, now) if deadline is not None else None
        transfer_id: int = ctx.conn.execute(
            insert(case_transfers)
            .values(
                case_id=case.id,
                state=case.state,
                from_unit=case.unit_code,
                to_unit=to_unit,
                to_role=to_role,
                reason=reason,
                sent_by=ctx.actor,
                sent_at=now,
                deadline_at=due,
                status="pending",
            )
            .returning(case_transfers.c.id)
        ).scalar_one()
        if deadline is not None:
            self.duty_timers.schedule(
                ctx.conn,
                KIND,
                transfer_id,
                case_id=case.id,
                state=case.state,
                revision=case.revision,  # CaseService.note re-points them to its revision
                wf=wf,
                d=deadline,
                start=now,
                deadline_at=due,
            )
        payload = {
            "transfer": transfer_id,
            "from_unit": case.unit_code,
            "to_unit": to_unit,
            "to_role": to_role,
            "reason": reason,
            "deadline": due.isoformat() if due is not None else None,
        }
        receivers = _accept_refs(rule, to_role, self._level(ctx.conn, to_unit))
        self._notify(ctx, to_unit, receivers, "transfer_received", SEND, payload, transfer_id)
        return payload

    def _answer(
        self,
        case_id: str,
        actor: str,
        action: str,
        text: str | None,
        transfer_id: int | None,
        key: str | None,
        viewer: Viewer | str,
    ) -> CaseView:
        scope = as_viewer(viewer)

        def work(ctx: ActionContext) -> Mapping[str, Any]:
            return self._settle(ctx, action, text, transfer_id, scope)

        request = {"note" if action == ACCEPT else "reason": text, "transfer": transfer_id}
        # The receiver may sit outside the case's unit: the lock is unscoped and the
        # work checks the actor's roles at the receiving unit (and the viewer's sight).
        try:
            return self.actions.act(case_id, actor, action, request, work, key=key, viewer=ADMIN)
        except UnknownCase:
            # PostgreSQL: a lock that waited for a concurrent accept re-checks its join of
            # the case to its unit against the unit it had before, and finds no row; once
            # more, the lock reads the case as it is now (a missing case stays missing).
            return self.actions.act(case_id, actor, action, request, work, key=key, viewer=ADMIN)

    def _settle(
        self,
        ctx: ActionContext,
        action: str,
        text: str | None,
        transfer_id: int | None,
        viewer: Viewer,
    ) -> Mapping[str, Any]:
        case, conn = ctx.case, ctx.conn
        if not viewer.everything and not _sees(conn, viewer, case.id):
            raise UnknownCase(case.id)
        waiting = _pending(conn, case.id)
        if waiting is None or (transfer_id is not None and waiting.id != transfer_id):
            raise self._not_pending(conn, case.id, transfer_id)
        rule = _rule(ctx.workflow, waiting.state)
        level = self._level(conn, waiting.to_unit)
        answerers = _accept_refs(rule, waiting.to_role, level)
        names = {r.partition(".")[2] for r in answerers}
        if not _holds_at(conn, ctx.actor, waiting.to_unit, names):
            what = "accept the transfer" if action == ACCEPT else "return the transfer"
            raise NotPermitted(ctx.actor, what, waiting.to_unit, answerers)
        status = "accepted" if action == ACCEPT else "returned"
        done = conn.execute(
            update(case_transfers)
            .where(case_transfers.c.id == waiting.id, case_transfers.c.status == "pending")
            .values(status=status, answered_by=ctx.actor, answered_at=ctx.now, answer_note=text)
        )
        if done.rowcount != 1:  # cannot happen under the case lock; refuse rather than guess
            raise self._not_pending(conn, case.id, waiting.id)
        self.duty_timers.cancel(conn, KIND, [waiting.id])
        if action == ACCEPT:
            conn.execute(
                update(cases).where(cases.c.id == case.id).values(unit_code=waiting.to_unit)
            )
        payload: dict[str, Any] = {
            "transfer": waiting.id,
            "from_unit": waiting.from_unit,
            "to_unit": waiting.to_unit,
            "to_role": waiting.to_role,
            "sent_by": waiting.sent_by,
            ("note" if action == ACCEPT else "reason"): text,
        }
        senders = (f"person:{waiting.sent_by}", *sorted(_senders(ctx.workflow, None, rule)))
        template = "transfer_accepted" if action == ACCEPT else "transfer_returned"
        self._notify(ctx, waiting.from_unit, senders, template, action, payload, waiting.id)
        return payload

    # -- helpers --------------------------------------------------------------
    def _receiver(
        self, conn: Connection, case: Any, rule: TransferRule, to: str
    ) -> tuple[str, str | None]:
        """The receiving unit (and department role) *to* names, or InvalidData on 'to'."""
        allowed = [*rule.levels, *(str(d) for d in rule.departments)]
        listed = ", ".join(allowed)
        if "." in to:
            level, _, role = to.partition(".")
            if RoleRef(level, role) not in rule.departments:
                raise InvalidData(
                    {"to": f"{to!r} is not a department this state may transfer to ({listed})"}
                )
            codes = str(case.unit_path).strip("/").split("/")
            unit = conn.execute(
                select(units.c.code).where(units.c.code.in_(codes), units.c.level == level)
            ).scalar_one_or_none()
            if unit is None:
                raise InvalidData({"to": f"the case's chain has no {level} unit for {to!r}"})
            return str(unit), to
        row = conn.execute(
            select(units.c.code, units.c.level, units.c.active).where(units.c.code == to)
        ).one_or_none()
        if row is None:
            raise InvalidData({"to": f"unknown unit {to!r}; write a unit code or LEVEL.ROLE"})
        if not row.active:
            raise InvalidData({"to": f"unit {to!r} is no longer active"})
        if row.level not in rule.levels:
            raise InvalidData(
                {"to": f"unit {to!r} is a {row.level}; this state may transfer to: {listed}"}
            )
        if to == case.unit_code:
            raise InvalidData({"to": f"the case is already at unit {to!r}"})
        return str(row.code), None

    def _receivers(self, conn: Connection, duty: Any, case: Any) -> Recipients:
        """Whom a transfer's reminder and rungs reach: the receiver's accept roles."""
        wf = self.actions.cases.catalog.compiled(conn, case.definition_id).workflow
        rule = _rule(wf, duty.state)
        refs = _accept_refs(rule, duty.to_role, self._level(conn, duty.to_unit))
        return Recipients(roles=tuple(refs), unit=duty.to_unit)

    def _notify(
        self,
        ctx: ActionContext,
        unit: str,
        roles: Any,
        template: str,
        action: str,
        payload: Mapping[str, Any],
        transfer_id: int,
    ) -> None:
        case = ctx.case
        enqueue(
            ctx.conn,
            case_id=case.id,
            unit_code=unit,
            kind="transition",
            roles=list(roles),
            template=template,
            context={
                "event": {
                    "trigger": action,
                    "title": {SEND: "移送", ACCEPT: "受理移送", RETURN: "退回移送"}[action],
                    "actor": ctx.actor,
                    "payload": dict(payload),
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
            dedupe_key=f"transfer:{transfer_id}:{action}",
            at=ctx.now,
        )

    def _not_pending(
        self, conn: Connection, case_id: str, transfer_id: int | None
    ) -> TransferNotPending:
        """The refusal naming *transfer_id* (None: the case's latest transfer) as answered."""
        t = case_transfers.c
        stmt = select(t.id, t.status, t.answered_by).where(t.case_id == case_id)
        if transfer_id is not None:
            stmt = stmt.where(t.id == transfer_id)
        row = conn.execute(stmt.order_by(t.id.desc()).limit(1)).one_or_none()
        if row is None:
            return TransferNotPending(case_id, transfer_id, None, None)
        return TransferNotPending(case_id, row.id, row.status, row.answered_by)

    def _level(self, conn: Connection, unit: str) -> str:
        level: str = conn.execute(select(units.c.level).where(units.c.code == unit)).scalar_one()
        return level

    def _case_tz(self, conn: Connection, case_id: str, viewer: Viewer | str) -> str:
        row = conn.execute(
            select(cases.c.definition_id)
            .join(units, units.c.code == cases.c.unit_code)
            .where(cases.c.id == case_id, visible_case(viewer, units.c.path, cases.c.id))
        ).one_or_none()
        if row is None:
            raise UnknownCase(case_id)
        wf = self.actions.cases.catalog.compiled(conn, row.definition_id).workflow
        return wf.timezone or self.timezone


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidData({"reason": "is required"})
    if len(text) > REASON_LIMIT:
        raise InvalidData({"reason": f"at most {REASON_LIMIT} characters"})
    return text


def _pending(conn: Connection, case_id: str) -> Any:
    return conn.execute(
        select(case_transfers).where(
            case_transfers.c.case_id == case_id, case_transfers.c.status == "pending"
        )
    ).first()


def _rule(wf: Workflow, state: str) -> TransferRule:
    """The transfer rule of *state* (a pending transfer's state declares one)."""
    rule = wf.state(state).transfer if wf.has_state(state) else None
    return rule if rule is not None else TransferRule()


def _deadline_of(wf: Workflow, duty: Any) -> Deadline | None:
    return _rule(wf, duty.state).deadline


def _senders(wf: Workflow, state: StateSpec | None, rule: TransferRule) -> set[str]:
    """Who may send: the rule's roles, else the roles of the state's transitions."""
    if rule.roles:
        return {str(r) for r in rule.roles}
    if state is None:
        return set()
    return {
        str(r) for t in wf.transitions_from(state.name) for r in t.roles if str(r) != SYSTEM_ROLE
    }


def _accept_refs(rule: TransferRule, to_role: str | None, level: str) -> list[str]:
    """``LEVEL.ROLE`` that answer a transfer: the department's role, else the rule's
    accept role names at the receiving unit's level."""
    if to_role:
        return [to_role]
    assert level in LEVELS
    return [f"{level}.{name}" for name in rule.accept_roles]


def _holds_at(conn: Connection, actor: str, unit: str, roles: set[str]) -> bool:
    """Whether the active *actor* holds one of the role names on *unit* itself."""
    if actor == SYSTEM_ACTOR or not roles:
        return False
    found = conn.execute(
        select(person_roles.c.id)
        .join(people, people.c.id == person_roles.c.person_id)
        .where(
            person_roles.c.person_id == actor,
            person_roles.c.unit_code == unit,
            person_roles.c.role.in_(sorted(roles)),
            person_roles.c.active.is_(True),
            people.c.active.is_(True),
        )
        .limit(1)
    ).first()
    return found is not None


def _sees(conn: Connection, viewer: Viewer, case_id: str) -> bool:
    found = conn.execute(
        select(cases.c.id)
        .join(units, units.c.code == cases.c.unit_code)
        .where(cases.c.id == case_id, visible_case(viewer, units.c.path, cases.c.id))
    ).first()
    return found is not None


def _hop(row: Any, tz: str, now: dt.datetime) -> dict[str, Any]:
    zone = ZoneInfo(tz)

    def local(moment: dt.datetime | None) -> str | None:
        return moment.astimezone(zone).isoformat() if moment is not None else None

    deadline = row.deadline_at
    answered = row.answered_at
    late = deadline is not None and (
        (answered is not None and answered > deadline)
        or (row.status == "pending" and now > deadline)
    )
    return {
        "id": row.id,
        "state": row.state,
        "from_unit": row.from_unit,
        "to_unit": row.to_unit,
        "to_role": row.to_role,
        "reason": row.reason,
        "status": row.status,
        "sent_by": row.sent_by,
        "sent_at": local(row.sent_at),
        "deadline": local(deadline),
        "answered_by": row.answered_by,
        "answered_at": local(answered),
        "answer_note": row.answer_note,
        "late": late,
    }
