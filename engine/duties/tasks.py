"""My tasks (我的待办): every open case where a person can act now, sorted by urgency.

A task is a case and what the person can do there:

- ``act`` — a transition from the case's state permits a role the person holds on the
  case's chain (the system role aside); ``ack`` when the state asks for an
  acknowledgement (签收) nobody gave yet;
- the person is the current visit's assignee (``act``);
- ``sign`` — a countersign party still pending whose role the person holds on the chain;
- ``transfer`` — a transfer pending to a unit where the person holds an accepting role;
- ``supervision`` — an open supervision of a case of a unit the person leads.

Everything is one SQL statement per kind, scoped by what the person holds: the
units where they hold a role (their subtrees are where their cases are) and, per
role, the (definition, state) pairs where that role can act — so a district with
100k open cases is never loaded to find a village member's ten.  Sort: overdue
first (most overdue first), then the soonest deadline, then no deadline — which is
``deadline ASC NULLS LAST``, in SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Connection, Engine, select

from engine.cases.catalog import Catalog
from engine.clock import Clock
from engine.definitions import FieldSpec, Workflow
from engine.definitions.model import SYSTEM_ROLE, Deadline
from engine.duties.assignment import ACK_KINDS, assigner_allowed
from engine.errors import NotPermitted, UnknownPerson
from engine.grid.held import HeldRoles
from engine.grid.visibility import visible
from engine.store import connection
from engine.store.db import read_only
from engine.store.tables import (
    case_assignments,
    case_parties,
    case_transfers,
    cases,
    supervisions,
    timers,
    units,
    workflow_versions,
)

__all__ = ["Task", "Tasks"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
DEFAULT_ACCEPT_ROLES = ("leader",)


@dataclass(frozen=True, kw_only=True)
class Task:
    case_id: str
    workflow: str
    unit: str
    unit_name: str
    state: str
    state_title: str
    kind: str  # act | ack | sign | transfer | supervision
    actions: list[dict[str, Any]] = field(default_factory=list)
    deadline_at: dt.datetime | None = None
    deadline_local: str | None = None
    seconds_left: int | None = None  # negative: overdue
    assignee: str | None = None
    acked_at: dt.datetime | None = None
    subject_id: int | None = None  # the party, transfer or supervision row
    remind_seconds: int | None = None  # reminders begin this long before the deadline

    @property
    def overdue(self) -> bool:
        return self.seconds_left is not None and self.seconds_left < 0

    @property
    def due_soon(self) -> bool:
        """Not overdue, but inside the reminder window of its deadline."""
        if self.seconds_left is None or self.remind_seconds is None or self.overdue:
            return False
        return self.seconds_left <= self.remind_seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case_id,
            "workflow": self.workflow,
            "unit": {"code": self.unit, "name": self.unit_name},
            "state": self.state,
            "state_title": self.state_title,
            "kind": self.kind,
            "actions": self.actions,
            "deadline_at": self.deadline_at.isoformat() if self.deadline_at else None,
            "deadline_local": self.deadline_local,
            "seconds_left": self.seconds_left,
            "overdue": self.overdue,
            "assignee": self.assignee,
            "acked_at": self.acked_at.isoformat() if self.acked_at else None,
            "subject_id": self.subject_id,
        }


def _field(spec: FieldSpec, required: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": spec.name,
        "type": spec.type,
        "title": spec.title or spec.name,
        "required": required,
    }
    if spec.values:
        out["values"] = list(spec.values)
    if spec.items:
        out["items"] = spec.items
    return out


def _actions(wf: Workflow, state: str, held: set[str]) -> list[dict[str, Any]]:
    """The triggers *held* may fire from *state*, with the payload each takes."""
    out: dict[str, dict[str, Any]] = {}
    for t in wf.transitions_from(state):
        names = {str(r) for r in t.roles}
        if names == {SYSTEM_ROLE}:
            continue
        if names and not names & held:
            continue
        if not names and not held - {SYSTEM_ROLE}:
            continue
        entry = out.setdefault(t.trigger, {"trigger": t.trigger, "title": t.label, "payload": []})
        seen = {p["name"] for p in entry["payload"]}
        for spec in t.payload:
            if spec.name not in seen:
                entry["payload"].append(_field(spec, spec.name in t.requires))
        for name in t.requires:  # a required case field the payload does not declare
            case_field = wf.field(name)
            if case_field is not None and all(p["name"] != name for p in entry["payload"]):
                entry["payload"].append(_field(case_field, True))
    return list(out.values())


class Tasks:
    def __init__(
        self, engine: Engine, catalog: Catalog, clock: Clock, held: HeldRoles, timezone: str
    ) -> None:
        self.engine = engine
        self.catalog = catalog
        self.clock = clock
        self.held = held
        self.timezone = timezone

    def for_actor(
        self,
        actor: str,
        *,
        overdue_only: bool = False,
        limit: int = DEFAULT_LIMIT,
        case: str | None = None,
    ) -> list[Task]:
        """*actor*'s tasks, most urgent first; with *case*, only those on that case
        (what the case page offers its viewer)."""
        limit = max(1, min(limit, MAX_LIMIT))
        now = self.clock.now()
        with connection(read_only(self.engine)) as conn:
            try:
                holdings = self.held.of(conn, actor, None)
            except UnknownPerson:
                raise NotPermitted(actor, "list tasks", "-", [], "unknown actor") from None
            if not holdings.active or not holdings.roles:
                return []
            paths = dict(
                conn.execute(
                    select(units.c.code, units.c.path).where(
                        units.c.code.in_(sorted({c for c, _ in holdings.roles})),
                        units.c.active.is_(True),
                    )
                ).all()
            )
            roles = {(paths[c], ref) for c, ref in holdings.roles if c in paths}
            if not roles:
                return []
            workflows = self._workflows(conn)
            found: list[Task] = []
            found += self._acts(conn, actor, roles, workflows, now, overdue_only, limit, case)
            found += self._parties(conn, actor, roles, workflows, now, overdue_only, limit, case)
            found += self._transfers(conn, actor, roles, workflows, now, overdue_only, limit, case)
            found += self._supervisions(
                conn, actor, roles, workflows, now, overdue_only, limit, case
            )
        found.sort(key=_urgency)
        return found[:limit]

    # -- the kinds ---------------------------------------------------------------
    def _acts(
        self,
        conn: Connection,
        actor: str,
        roles: set[tuple[str, str]],
        workflows: dict[int, Workflow],
        now: dt.datetime,
        overdue_only: bool,
        limit: int,
        case: str | None = None,
    ) -> list[Task]:
        c, u = cases.c, units.c
        a = case_assignments.c
        current = (a.case_id == c.id) & (a.state == c.state) & (a.offered_at == c.state_entered_at)
        current &= a.status != "cancelled"
        assignee = select(a.assignee).where(current).limit(1).scalar_subquery()
        acked_at = select(a.acked_at).where(current).limit(1).scalar_subquery()
        t = timers.c
        ack_due = (
            select(sa.func.min(t.deadline_at))
            .where(
                t.case_id == c.id,
                t.kind == ACK_KINDS[0],
                t.state == c.state,
                t.created_at == c.state_entered_at,
                t.status != "cancelled",
            )
            .scalar_subquery()
        )
        due = sa.func.coalesce(sa.case((assignee.is_(None), ack_due), else_=None), c.deadline_at)
        can: list[ColumnElement[bool]] = []
        for path, ref in sorted(roles):
            pairs = [
                (definition, state)
                for definition, wf in workflows.items()
                for state in _states_for(wf, ref)
            ]
            if not pairs:
                continue
            by_def: dict[int, list[str]] = {}
            for definition, state in pairs:
                by_def.setdefault(definition, []).append(state)
            where = sa.or_(
                *(
                    (c.definition_id == d) & c.state.in_(sorted(states))
                    for d, states in by_def.items()
                )
            )
            can.append(_under(u.path, path) & where)
        mine = assignee == actor
        stmt = (
            select(
                c.id,
                c.workflow,
                c.definition_id,
                c.state,
                c.unit_code,
                c.deadline_at,
                c.state_entered_at,
                u.name.label("unit_name"),
                u.path.label("unit_path"),
                assignee.label("assignee"),
                acked_at.label("acked_at"),
                ack_due.label("ack_due"),
                due.label("due"),
            )
            .join(units, u.code == c.unit_code)
            .where(c.closed_at.is_(None), sa.or_(mine, *can), visible(actor, u.path))
            .order_by(due.is_(None), due, c.id)
            .limit(limit)
        )
        if overdue_only:
            stmt = stmt.where(due < now)
        if case is not None:
            stmt = stmt.where(c.id == case)
        out: list[Task] = []
        for r in conn.execute(stmt):
            wf = workflows.get(r.definition_id) or self._wf(conn, r.definition_id)
            held = {ref for path, ref in roles if r.unit_path.startswith(path)}
            ack_pending = (
                r.assignee is None and wf.has_state(r.state) and (wf.state(r.state).ack is not None)
            )
            deadline = r.due
            out.append(
                self._task(
                    wf,
                    r,
                    kind="ack" if ack_pending and r.ack_due is not None else "act",
                    actions=_actions(wf, r.state, held),
                    deadline=deadline,
                    now=now,
                    assignee=r.assignee,
                    acked_at=r.acked_at,
                    can_assign=assigner_allowed(wf, held),
                )
            )
        return out

    def _parties(
        self,
        conn: Connection,
        actor: str,
        roles: set[tuple[str, str]],
        workflows: dict[int, Workflow],
        now: dt.datetime,
        overdue_only: bool,
        limit: int,
        case: str | None = None,
    ) -> list[Task]:
        p, c, u = case_parties.c, cases.c, units.c
        held = [_under(u.path, path) & (p.role == ref) for path, ref in sorted(roles)]
        stmt = (
            select(
                p.id.label("subject_id"),
                p.deadline_at.label("due"),
                p.role,
                c.id,
                c.workflow,
                c.definition_id,
                c.state,
                c.unit_code,
                u.name.label("unit_name"),
            )
            .join(cases, c.id == p.case_id)
            .join(units, u.code == c.unit_code)
            .where(
                p.status == "pending",
                p.state == c.state,
                c.closed_at.is_(None),
                sa.or_(*held),
                visible(actor, u.path),
            )
            .order_by(p.deadline_at.is_(None), p.deadline_at, p.id)
            .limit(limit)
        )
        if overdue_only:
            stmt = stmt.where(p.deadline_at < now)
        if case is not None:
            stmt = stmt.where(c.id == case)
        return [
            self._task(
                workflows.get(r.definition_id) or self._wf(conn, r.definition_id),
                r,
                kind="sign",
                actions=[
                    {"trigger": "sign", "title": "会签同意", "payload": []},
                    {"trigger": "refuse", "title": "会签不同意", "payload": []},
                ],
                deadline=r.due,
                now=now,
                subject_id=r.subject_id,
            )
            for r in conn.execute(stmt)
        ]

    def _transfers(
        self,
        conn: Connection,
        actor: str,
        roles: set[tuple[str, str]],
        workflows: dict[int, Workflow],
        now: dt.datetime,
        overdue_only: bool,
        limit: int,
        case: str | None = None,
    ) -> list[Task]:
        x, c, u = case_transfers.c, cases.c, units.c
        to_unit = units.alias("to_unit")
        accept = self._accept_roles(workflows)
        held: list[ColumnElement[bool]] = []
        for path, ref in sorted(roles):
            # held on the receiving unit itself: an accepting role, or the department named
            name = ref.partition(".")[2]
            named = x.to_role == ref
            takes = (x.to_role.is_(None) | named) if name in accept else named
            held.append((to_unit.c.path == path) & takes)
        stmt = (
            select(
                x.id.label("subject_id"),
                x.deadline_at.label("due"),
                c.id,
                c.workflow,
                c.definition_id,
                c.state,
                c.unit_code,
                u.name.label("unit_name"),
            )
            .join(cases, c.id == x.case_id)
            .join(units, u.code == c.unit_code)
            .join(to_unit, to_unit.c.code == x.to_unit)
            .where(x.status == "pending", c.closed_at.is_(None), sa.or_(*held))
            .order_by(x.deadline_at.is_(None), x.deadline_at, x.id)
            .limit(limit)
        )
        if overdue_only:
            stmt = stmt.where(x.deadline_at < now)
        if case is not None:
            stmt = stmt.where(c.id == case)
        return [
            self._task(
                workflows.get(r.definition_id) or self._wf(conn, r.definition_id),
                r,
                kind="transfer",
                actions=[
                    {"trigger": "transfer_accept", "title": "接收", "payload": []},
                    {"trigger": "transfer_return", "title": "退回", "payload": []},
                ],
                deadline=r.due,
                now=now,
                subject_id=r.subject_id,
            )
            for r in conn.execute(stmt)
        ]

    def _supervisions(
        self,
        conn: Connection,
        actor: str,
        roles: set[tuple[str, str]],
        workflows: dict[int, Workflow],
        now: dt.datetime,
        overdue_only: bool,
        limit: int,
        case: str | None = None,
    ) -> list[Task]:
        s, c, u = supervisions.c, cases.c, units.c
        led = units.alias("led_unit")
        leads = [led.c.path == path for path, ref in sorted(roles) if ref.endswith(".leader")]
        if not leads:
            return []
        stmt = (
            select(
                s.id.label("subject_id"),
                s.deadline_at.label("due"),
                c.id,
                c.workflow,
                c.definition_id,
                c.state,
                c.unit_code,
                u.name.label("unit_name"),
            )
            .join(cases, c.id == s.case_id)
            .join(units, u.code == c.unit_code)
            .join(led, led.c.code == s.unit_code)
            .where(
                s.status == "open",
                s.state == c.state,  # answered by the case moving on (resolved lazily)
                c.state_entered_at <= s.issued_at,
                c.closed_at.is_(None),
                sa.or_(*leads),
            )
            .order_by(s.deadline_at, s.id)
            .limit(limit)
        )
        if overdue_only:
            stmt = stmt.where(s.deadline_at < now)
        if case is not None:
            stmt = stmt.where(c.id == case)
        return [
            self._task(
                workflows.get(r.definition_id) or self._wf(conn, r.definition_id),
                r,
                kind="supervision",
                actions=[{"trigger": "supervise_reply", "title": "督办回复", "payload": []}],
                deadline=r.due,
                now=now,
                subject_id=r.subject_id,
            )
            for r in conn.execute(stmt)
        ]

    # -- helpers -----------------------------------------------------------------
    def _workflows(self, conn: Connection) -> dict[int, Workflow]:
        """Every definition version cases may be on (a few per workflow)."""
        ids = conn.execute(select(workflow_versions.c.id)).scalars().all()
        return {i: self._wf(conn, i) for i in ids}

    def _wf(self, conn: Connection, definition_id: int) -> Workflow:
        return self.catalog.compiled(conn, definition_id).workflow

    def _accept_roles(self, workflows: dict[int, Workflow]) -> set[str]:
        """Role names at a receiving unit that accept a transfer: the states' ``transfer``
        rule (``accept_roles``) where the definition has one, else ``leader``."""
        found: set[str] = set()
        for wf in workflows.values():
            for state in wf.states:
                rule = getattr(state, "transfer", None)
                names: Iterable[Any] = getattr(rule, "accept_roles", ()) or ()
                found |= {str(n) for n in names}
        return found or set(DEFAULT_ACCEPT_ROLES)

    def _task(
        self,
        wf: Workflow,
        r: Any,
        *,
        kind: str,
        actions: list[dict[str, Any]],
        deadline: dt.datetime | None,
        now: dt.datetime,
        assignee: str | None = None,
        acked_at: dt.datetime | None = None,
        subject_id: int | None = None,
        can_assign: bool = False,
    ) -> Task:
        tz = ZoneInfo(wf.timezone or self.timezone)
        if can_assign:
            actions = [*actions, {"trigger": "assign", "title": "指派", "payload": []}]
        if kind == "ack":
            actions = [{"trigger": "ack", "title": "签收", "payload": []}, *actions]
        state = wf.state(r.state) if wf.has_state(r.state) else None
        return Task(
            case_id=r.id,
            workflow=r.workflow,
            unit=r.unit_code,
            unit_name=r.unit_name,
            state=r.state,
            state_title=state.title if state is not None else r.state,
            kind=kind,
            actions=actions,
            deadline_at=deadline,
            deadline_local=deadline.astimezone(tz).strftime("%Y-%m-%d %H:%M") if deadline else None,
            seconds_left=int((deadline - now).total_seconds()) if deadline else None,
            assignee=assignee,
            acked_at=acked_at,
            subject_id=subject_id,
            remind_seconds=_remind_window(wf, kind, r.state, getattr(r, "role", None)),
        )


def _remind_window(wf: Workflow, kind: str, state_name: str, role: str | None) -> int | None:
    """How long before its deadline the duty of *kind* is reminded of (the earliest
    reminder; a repeating one: its interval); None when it has none."""
    state = wf.state(state_name) if wf.has_state(state_name) else None
    d: Deadline | None = None
    if kind == "act" and state is not None:
        d = state.deadline
    elif kind == "ack" and state is not None:
        d = state.ack
    elif kind == "sign" and state is not None and state.countersign and role:
        d = state.countersign.deadline_of(role)
    elif kind == "transfer" and state is not None and state.transfer is not None:
        d = state.transfer.deadline
    elif kind == "supervision" and wf.supervision is not None:
        d = wf.supervision.deadline
    if d is None:
        return None
    spans = [r.seconds for r in d.remind]
    if d.remind_every is not None:
        spans.append(d.remind_every.seconds)
    return max(spans) if spans else None


def _states_for(wf: Workflow, ref: str) -> list[str]:
    """States of *wf* where a transition permits *ref* (or names no roles)."""
    out = []
    for state in wf.states:
        if state.final:
            continue
        for t in wf.transitions_from(state.name):
            names = {str(r) for r in t.roles}
            if ref in names or (not names and ref != SYSTEM_ROLE):
                out.append(state.name)
                break
    return out


def _under(path: ColumnElement[str], prefix: str) -> ColumnElement[bool]:
    """The unit at *path* is *prefix*'s unit or below it (an exact prefix test)."""
    return sa.func.substr(path, 1, len(prefix)) == prefix


def _urgency(task: Task) -> tuple[int, float, str]:
    if task.deadline_at is None:
        return (1, 0.0, task.case_id)
    return (0, task.deadline_at.timestamp(), task.case_id)
