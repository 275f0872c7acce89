"""Countersign (会签): several parties each sign, or refuse with a reason, before a case
leaves a state.

A state with ``countersign:`` (docs/workflow-format.md) gets, when a case enters it,
one ``case_parties`` row per party (pending, ``entered_seq`` = the entering change's
revision, its own deadline) with its timers (kind ``party``: reminders to the party's
role, an overdue fact with ``duty = 'party'``, escalation rungs), and a
``countersign_request`` notice to each party.  Leaving the state cancels the parties
still pending.  While a party is pending the state's transitions are refused
(:class:`~engine.errors.CountersignPending`), except ``then``/``refused`` fired by the
system.

``sign`` and ``refuse`` are case actions (:mod:`engine.duties.actions`): the actor
must hold the party's role on the case's chain.  They lock the case row, so the
signature that makes *signed = need* is the one that joins, exactly once: it writes a
``countersign_done`` history entry (by the system), cancels the parties still pending
and, in the same transaction, fires ``then`` when the state declares it.  When too
many refusals leave the need out of reach, the same entry records ``outcome:
refused`` and ``refused`` fires when declared.

States without ``countersign`` cost no statement here: every hook decides from the
compiled definition first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from engine.cases.records import CaseView, Change
from engine.cases.service import SYSTEM_ACTOR, CaseService
from engine.definitions import Workflow
from engine.definitions.model import Countersign, StateSpec
from engine.duties.actions import ActionContext, CaseActions
from engine.duties.party_views import PartyView, read_parties
from engine.duties.timers import DutyKind, DutyTimers, Recipients
from engine.errors import (
    CountersignPending,
    InvalidData,
    NoCountersign,
    NotPermitted,
    PartyNotPending,
)
from engine.grid.visibility import ADMIN, Viewer, as_viewer
from engine.store.tables import case_parties, timers
from engine.timers import wake
from notifications.outbox import enqueue

__all__ = ["DONE_TRIGGER", "Countersigns", "PartyView"]

DUTY = "party"
SIGN = "sign"
REFUSE = "refuse"
DONE_TRIGGER = "countersign_done"
REQUEST_TEMPLATE = "countersign_request"
REMINDER_TEMPLATE = "countersign_reminder"
OVERDUE_TEMPLATE = "countersign_overdue"
DONE_TEMPLATE = "countersign_done"
NOTE_LIMIT = 2000  # characters of a signature's note or a refusal's reason

_p = case_parties.c


@dataclass
class _Outcome:
    """What a signature concluded, for the part that runs after its history entry."""

    case_id: str
    state: str
    entered_seq: int
    countersign: Countersign
    joined: bool
    signed: list[str]
    refused: list[str]
    cancelled: list[str]


class Countersigns:
    """The countersign service: the effects hook, the gate, the actions and the read."""

    def __init__(
        self,
        cases: CaseService,
        duty_timers: DutyTimers,
        handlers: dict[str, Any],
        default_timezone: str = "Asia/Shanghai",
    ) -> None:
        self.cases = cases
        self.actions = CaseActions(cases)
        self.duty_timers = duty_timers
        self.default_timezone = default_timezone
        duty_timers.register(
            DutyKind(
                name=DUTY,
                table=case_parties,
                open_status="pending",
                deadline_of=_deadline_of,
                recipients=lambda conn, duty, case: Recipients((str(duty.role),)),
                reminder_template=REMINDER_TEMPLATE,
                overdue_template=OVERDUE_TEMPLATE,
            ),
            handlers,
        )

    # -- the effects hook: entering and leaving a countersign state ---------
    def on_change(self, conn: Connection, change: Change) -> dict[str, Any]:
        wf = change.workflow
        moved = change.transition is not None or change.from_state is None
        if not moved:
            return {}
        if change.from_state is not None and _countersign(wf, change.from_state) is not None:
            self._leave(conn, change)
        c = _countersign(wf, change.to_state)
        if c is not None:
            self._enter(conn, change, c)
        return {}

    def _leave(self, conn: Connection, change: Change) -> None:
        # the state's timers, these parties' among them, are cancelled by TimerSchedule.leave
        conn.execute(
            update(case_parties)
            .where(
                _p.case_id == change.case_id,
                _p.state == change.from_state,
                _p.status == "pending",
            )
            .values(status="cancelled", acted_at=change.at)
        )

    def _enter(self, conn: Connection, change: Change, c: Countersign) -> None:
        wf = change.workflow
        dues = {}
        for party in c.parties:
            d = c.deadline_of(str(party.role))
            dues[str(party.role)] = (
                self.duty_timers.due(wf, d, change.at) if d is not None else None,
                d,
            )
        # one multi-row INSERT … RETURNING on both backends (an executemany is a
        # statement per row on SQLite); rows are matched back by role, not by order
        inserted = conn.execute(
            insert(case_parties)
            .values(
                [
                    {
                        "case_id": change.case_id,
                        "state": change.to_state,
                        "entered_seq": change.seq,
                        "role": str(p.role),
                        "status": "pending",
                        "deadline_at": dues[str(p.role)][0],
                        "created_at": change.at,
                    }
                    for p in c.parties
                ]
            )
            .returning(_p.id, _p.role)
        ).all()
        timer_rows: list[dict[str, Any]] = []
        asked: dict[dt.datetime | None, list[str]] = {}  # the parties told, by deadline
        for row in inserted:
            at, d = dues[row.role]
            if at is not None and d is not None:
                timer_rows += self.duty_timers.rows(
                    DUTY,
                    row.id,
                    case_id=change.case_id,
                    state=change.to_state,
                    revision=change.seq,
                    wf=wf,
                    d=d,
                    start=change.at,
                    deadline_at=at,
                )
            asked.setdefault(at, []).append(row.role)
        if timer_rows:
            conn.execute(insert(timers), timer_rows)
            wake.written(conn, min(r["due_at"] for r in timer_rows))
        title = wf.state(change.to_state).title
        for at, roles in asked.items():
            context: dict[str, Any] = {
                "snapshot": {"state": change.to_state, "data": change.data, "escalation_level": 0}
            }
            if at is not None:
                context["deadline"] = {
                    "due": at.isoformat(),
                    "state": change.to_state,
                    "state_title": title,
                    "rung": None,
                }
            enqueue(
                conn,
                case_id=change.case_id,
                kind="reminder" if at is not None else "transition",
                roles=roles,
                template=REQUEST_TEMPLATE,
                context=context,
                dedupe_key=f"countersign:{change.case_id}:{change.seq}:{at or '-'}",
                at=change.at,
            )

    # -- the gate ------------------------------------------------------------
    def check(self, conn: Connection, case: Any, wf: Workflow, trigger: str, actor: str) -> None:
        """Refuse the state's transitions while one of its parties is pending."""
        c = _countersign(wf, case.state)
        if c is None:
            return
        if actor == SYSTEM_ACTOR and trigger in (c.then, c.refused):
            return
        pending = list(
            conn.execute(
                select(_p.role)
                .where(_p.case_id == case.id, _p.state == case.state, _p.status == "pending")
                .order_by(_p.id)
            ).scalars()
        )
        if pending:
            raise CountersignPending(case.id, case.state, trigger, pending)

    # -- the actions -----------------------------------------------------------
    def sign(
        self,
        case_id: str,
        actor: str,
        *,
        role: str | None = None,
        note: str | None = None,
        key: str | None = None,
        viewer: Viewer | str = ADMIN,
    ) -> CaseView:
        """Sign as the actor's pending party of the case's countersign (*role* when it
        holds several); the signature that meets the need joins."""
        _check_note(note, "note")
        request = {"role": role, "note": note}
        return self._act(case_id, actor, SIGN, request, role, note, key, viewer)

    def refuse(
        self,
        case_id: str,
        actor: str,
        *,
        reason: str,
        role: str | None = None,
        key: str | None = None,
        viewer: Viewer | str = ADMIN,
    ) -> CaseView:
        """Refuse, with a *reason*, as the actor's pending party."""
        if reason is None or not str(reason).strip():
            raise InvalidData({"reason": "is required: say why the party refuses"})
        _check_note(reason, "reason")
        request = {"role": role, "reason": reason}
        return self._act(case_id, actor, REFUSE, request, role, reason, key, viewer)

    def _act(
        self,
        case_id: str,
        actor: str,
        action: str,
        request: Mapping[str, Any],
        role: str | None,
        note: str | None,
        key: str | None,
        viewer: Viewer | str,
    ) -> CaseView:
        if actor == SYSTEM_ACTOR:
            raise NotPermitted(
                actor, action, "-", [], "the system actor is reserved for the engine"
            )
        scope = as_viewer(viewer)
        concluded: list[_Outcome] = []
        work = self._work(action, role, note, concluded)

        def run(conn: Connection) -> CaseView:
            self.actions.run(conn, case_id, actor, action, work, scope)
            for outcome in concluded:
                self._conclude(conn, outcome)
            return self.cases._get(conn, case_id)

        body = {"op": action, "case": case_id, **request}
        return self.cases._idempotent(actor, key, body, run)

    def _work(
        self, action: str, role: str | None, note: str | None, concluded: list[_Outcome]
    ) -> Callable[[ActionContext], Mapping[str, Any]]:
        def work(ctx: ActionContext) -> Mapping[str, Any]:
            case = ctx.case
            c = _countersign(ctx.workflow, case.state)
            rows = self._visit(ctx.conn, case.id, case.state) if c is not None else []
            if c is None or not rows:
                raise NoCountersign(case.id, case.state)
            party = _choose(ctx, rows, action, role)
            status = "signed" if action == SIGN else "refused"
            ctx.conn.execute(
                update(case_parties)
                .where(_p.id == party.id, _p.status == "pending")
                .values(status=status, actor=ctx.actor, acted_at=ctx.now, note=note)
            )
            self.duty_timers.cancel(ctx.conn, DUTY, [party.id])
            statuses = {r.id: r.status for r in rows} | {party.id: status}
            by_status: dict[str, list[str]] = {"signed": [], "refused": [], "pending": []}
            for r in rows:
                by_status.setdefault(statuses[r.id], []).append(r.role)
            signed, refused, pending = (
                by_status["signed"],
                by_status["refused"],
                by_status["pending"],
            )
            need = c.required
            joined = len(signed) >= need
            if joined or len(signed) + len(pending) < need:
                if pending:
                    waiting = [r.id for r in rows if statuses[r.id] == "pending"]
                    ctx.conn.execute(
                        update(case_parties)
                        .where(_p.id.in_(waiting), _p.status == "pending")
                        .values(status="cancelled", acted_at=ctx.now)
                    )
                    self.duty_timers.cancel(ctx.conn, DUTY, waiting)
                concluded.append(
                    _Outcome(
                        case_id=case.id,
                        state=case.state,
                        entered_seq=rows[0].entered_seq,
                        countersign=c,
                        joined=joined,
                        signed=signed,
                        refused=refused,
                        cancelled=pending,
                    )
                )
            spec = c.party(party.role)
            payload: dict[str, Any] = {
                "party": party.id,
                "role": party.role,
                "title": spec.label if spec is not None else party.role,
                "signed": len(signed),
                "need": need,
            }
            payload["reason" if action == REFUSE else "note"] = note
            return payload

        return work

    def _conclude(self, conn: Connection, outcome: _Outcome) -> None:
        """The join (or the need out of reach): once, by the system, after the signature's
        own history entry, in its transaction."""
        row = self.cases.lock(conn, outcome.case_id)
        c = outcome.countersign
        payload = {
            "outcome": "joined" if outcome.joined else "refused",
            "state": outcome.state,
            "entered_seq": outcome.entered_seq,
            "need": c.required,
            "signed": outcome.signed,
            "refused": outcome.refused,
            "cancelled": outcome.cancelled,
        }
        revision = self.cases.note(conn, row, DONE_TRIGGER, payload, actor=SYSTEM_ACTOR)
        roles = [str(p.role) for p in c.parties]
        enqueue(
            conn,
            case_id=row.id,
            kind="transition",
            roles=roles,
            template=DONE_TEMPLATE,
            context={
                "event": {
                    "trigger": DONE_TRIGGER,
                    "title": "会签完成" if outcome.joined else "会签未通过",
                    "actor": SYSTEM_ACTOR,
                    "from": outcome.state,
                    "to": outcome.state,
                    "seq": revision,
                    "payload": {},
                },
                "snapshot": {"state": row.state, "data": row.data, "escalation_level": 0},
            },
            dedupe_key=f"countersign:{row.id}:{outcome.entered_seq}",
            at=self.cases.clock.now(),
        )
        trigger = c.then if outcome.joined else c.refused
        if trigger is not None:
            self.cases.fire_as_system(conn, row.id, trigger)

    # -- reading ---------------------------------------------------------------
    def parties(self, case_id: str, viewer: Viewer | str = ADMIN) -> list[PartyView]:
        """The parties of the case's latest countersign (its current state's when it is
        in one), in the order the workflow lists them."""
        return read_parties(self.cases, case_id, viewer, self.default_timezone)

    def _visit(self, conn: Connection, case_id: str, state: str) -> list[Any]:
        """The parties of the case's current visit of *state* (its latest entry)."""
        latest = (
            select(func.max(_p.entered_seq))
            .where(_p.case_id == case_id, _p.state == state)
            .scalar_subquery()
        )
        return list(
            conn.execute(
                select(case_parties)
                .where(_p.case_id == case_id, _p.state == state, _p.entered_seq == latest)
                .order_by(_p.id)
            )
        )


def _countersign(wf: Workflow, state: str) -> Countersign | None:
    spec: StateSpec | None = wf.state(state) if wf.has_state(state) else None
    return spec.countersign if spec is not None else None


def _deadline_of(wf: Workflow, duty: Any) -> Any:
    c = _countersign(wf, duty.state)
    return c.deadline_of(duty.role) if c is not None else None


def _check_note(text: str | None, name: str) -> None:
    if text is not None and len(text) > NOTE_LIMIT:
        raise InvalidData({name: f"is {len(text)} characters; at most {NOTE_LIMIT}"})


def _choose(ctx: ActionContext, rows: list[Any], action: str, role: str | None) -> Any:
    """The party the actor acts as: *role*, or its one pending party."""
    case = ctx.case
    if role is not None:
        party = next((r for r in rows if r.role == role), None)
        if party is None:
            roles = ", ".join(r.role for r in rows)
            raise InvalidData({"role": f"{role!r} is no party of this countersign ({roles})"})
        if role not in ctx.held:
            raise NotPermitted(ctx.actor, f"{action} as {role}", case.unit_code, [role])
        if party.status != "pending":
            raise PartyNotPending(case.id, role, party.status)
        return party
    mine = [r for r in rows if r.role in ctx.held]
    pending = [r for r in mine if r.status == "pending"]
    if len(pending) > 1:
        roles = ", ".join(r.role for r in pending)
        raise InvalidData({"role": f"the actor holds several pending parties ({roles}): name one"})
    if pending:
        return pending[0]
    if mine:
        raise PartyNotPending(case.id, mine[0].role, mine[0].status)
    waiting = [r.role for r in rows if r.status == "pending"]
    raise NotPermitted(ctx.actor, action, case.unit_code, waiting, "it is no pending party")
