"""The case service: create cases, submit events, read cases and their history.

One Python API used by the CLI and the HTTP API.  **One event is one
database transaction**: lock the case row (``FOR UPDATE`` on PostgreSQL;
SQLite writers hold the database lock from ``BEGIN IMMEDIATE``), ask the
compiled machine of its definition version which transitions the trigger may
take from the case's state, check permission and payload, let the machine
choose the transition (first true guard) and take the state it reaches, update
the case, append the hash-chained history row, commit.  A request with an
idempotency key claims the key first (see :meth:`CaseService._idempotent`), so
its twin replays its answer.  A refused event raises a specific
:class:`~engine.errors.EventRejected` and leaves nothing behind.

Effects that must commit with the state change (timers, notifications) are
applied through :class:`Effects` hooks inside the same transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, select, update

from engine.cases.catalog import Catalog
from engine.cases.history import GENESIS, ChainReport, verify_chain
from engine.cases.ids import next_id
from engine.cases.records import (
    CaseFilter,
    CaseView,
    Change,
    HistoryEntry,
    HistoryRow,
    jsonable,
    view_from_dict,
)
from engine.cases.statements import (
    INSERT_CASE,
    INSERT_HISTORY,
    UNIT_WITH_STAMP,
    insert_state_entry,
    lock_case,
    lock_params,
    set_case_columns,
    update_case,
)
from engine.clock import Clock
from engine.definitions import FieldSpec, TransitionSpec, Workflow
from engine.definitions.model import SYSTEM_ROLE
from engine.definitions.values import validate_data
from engine.errors import (
    GuardFailed,
    IdempotencyMismatch,
    InvalidData,
    LockTimedOut,
    NotPermitted,
    RequestInProgress,
    StorageUnavailable,
    UnknownCase,
    UnknownPerson,
    UnknownUnit,
    VersionConflict,
)
from engine.grid import registry as grid
from engine.grid.held import HeldRoles
from engine.grid.visibility import ADMIN, Viewer, as_viewer, visible, visible_case
from engine.store import connection, for_update, insert_or_ignore, lock_wait_limit, transaction
from engine.store.db import read_only
from engine.store.tables import (
    cases,
    history,
    idempotency,
    state_entries,
    timers,
    units,
    workflow_versions,
)

if TYPE_CHECKING:
    from engine.cases.batch import BatchResult, NewCase, Problem

__all__ = [
    "SYSTEM_ACTOR",
    "CaseFilter",
    "CaseService",
    "CaseView",
    "Change",
    "Effects",
    "Gate",
    "HistoryEntry",
]

SYSTEM_ACTOR = "system"
CREATE_TRIGGER = "create"
MIGRATED_TRIGGER = "migrated"  # a case moved onto another version of its workflow
DEFAULT_CLAIM_WAIT_MS = 5_000  # how long a same-key twin waits for the first request


class Effects(Protocol):
    """Work that commits with a state change (timers, notification outbox)."""

    def on_change(self, conn: Connection, change: Change) -> dict[str, Any]:
        """Apply the change's effects; returns extra fields for the reply."""
        ...


class Gate(Protocol):
    """A check an event must pass before it may leave the case's state (a countersign
    still waiting, a transfer not yet accepted); raises an EventRejected to refuse.
    It runs under the case lock, before anything is written; a gate must cost no
    statement for a state of a workflow that does not use it."""

    def check(self, conn: Connection, case: Any, wf: Workflow, trigger: str, actor: str) -> None:
        """Refuse *trigger* on the locked *case* row by raising, or return."""
        ...


class CaseService:
    def __init__(
        self,
        engine: Engine,
        catalog: Catalog,
        clock: Clock,
        effects: Sequence[Effects] = (),
        *,
        claim_wait_ms: int = DEFAULT_CLAIM_WAIT_MS,
    ) -> None:
        self.engine = engine
        self.catalog = catalog
        self.clock = clock
        self.effects: list[Effects] = list(effects)
        self.gates: list[Gate] = []  # checked in every event, under the lock
        self.claim_wait_ms = claim_wait_ms
        self.held = HeldRoles()  # actors' roles, cached per grid stamp
        # (definition id, state, trigger) -> the payload fields it accepts; definitions
        # are immutable, so this never goes stale
        self._payload_specs: dict[tuple[int, str, str], dict[str, FieldSpec]] = {}

    # -- the write path --------------------------------------------------
    def create_case(
        self,
        workflow: str,
        unit: str,
        actor: str,
        data: Mapping[str, Any],
        key: str | None = None,
        origin: Mapping[str, str] | None = None,
    ) -> CaseView:
        """Open a case.  *origin* names what it came from (``{"patrol": "P…"}``); it is
        written into the creation event's payload under ``"origin"``, so the history
        (and its hash chain) says where the case was discovered."""
        request: dict[str, Any] = {
            "op": "create",
            "workflow": workflow,
            "unit": unit,
            "data": dict(data),
        }
        if origin:
            request["origin"] = dict(origin)
        return self._idempotent(
            actor,
            key,
            request,
            lambda conn: self._create(conn, workflow, unit, actor, data, origin),
        )

    def submit_event(
        self,
        case_id: str,
        trigger: str,
        actor: str,
        payload: Mapping[str, Any] | None = None,
        key: str | None = None,
        *,
        revision: int | None = None,
        viewer: Viewer | str = ADMIN,
    ) -> CaseView:
        """Fire *trigger* on the case; with *revision*, only if the case is at that
        revision (:class:`~engine.errors.VersionConflict` otherwise).  A *viewer* (the
        HTTP API passes the authenticated actor) that does not see the case gets
        UnknownCase, from the same statement that locks the case."""
        scope = as_viewer(viewer)
        if actor == SYSTEM_ACTOR:
            raise NotPermitted(
                actor, trigger, "-", [], "the system actor is reserved for the engine"
            )
        body = dict(payload or {})
        request = {
            "op": "event",
            "case": case_id,
            "trigger": trigger,
            "payload": body,
            # the key is part of stored idempotency digests: renaming it would make a
            # retry across an upgrade look like a different request
            "expected_revision": revision,
        }
        return self._idempotent(
            actor,
            key,
            request,
            lambda conn: self._event(conn, case_id, trigger, actor, body, revision, scope),
        )

    def fire_as_system(self, conn: Connection, case_id: str, trigger: str) -> CaseView:
        """A trigger fired by the engine (an escalation rung), in the caller's transaction."""
        return self._event(conn, case_id, trigger, SYSTEM_ACTOR, {}, None)

    def lock(self, conn: Connection, case_id: str) -> Any:
        """The case row, locked for the caller's transaction (``FOR UPDATE`` on
        PostgreSQL; a SQLite writer holds the database); raises UnknownCase."""
        row = conn.execute(
            for_update(select(cases).where(cases.c.id == case_id), conn)
        ).one_or_none()
        if row is None:
            raise UnknownCase(case_id)
        return row

    def note(
        self,
        conn: Connection,
        row: Any,
        trigger: str,
        payload: Mapping[str, Any],
        *,
        actor: str = SYSTEM_ACTOR,
    ) -> int:
        """Append a history entry that moves no state (from = to = the current state;
        e.g. ``deadline_moved`` by the system, ``sign`` or ``transfer`` by a person) to
        the case *row* locked by :meth:`lock`, in the caller's transaction.  Every history
        row is a revision: the case's revision goes up by one and is returned, and the
        state's waiting timers (pending, or failed and waiting for a retry) are re-pointed
        to it, so they stay current."""
        wf = self.catalog.compiled(conn, row.definition_id).workflow
        return self._append(conn, row, wf, row.definition_id, row.state, trigger, payload, actor)

    def rebase(
        self,
        conn: Connection,
        row: Any,
        definition_id: int,
        to_state: str,
        payload: Mapping[str, Any],
        *,
        deadline_at: Any,
    ) -> int:
        """Move the case *row* locked by :meth:`lock` onto another version of its
        workflow (*definition_id*), in *to_state* (the same state, or the one it was
        mapped to), with a ``migrated`` history entry by the system; the time already
        spent in the state is kept (``state_entered_at`` and the state's first entry
        stay).  Like :meth:`note` it re-points the waiting timers; the caller cancels
        and writes the state's own timers and passes the new *deadline_at*."""
        wf = self.catalog.compiled(conn, definition_id).workflow
        if to_state != row.state:  # a renamed state keeps the first entry of the old one
            first = conn.execute(
                select(state_entries.c.first_entered_at).where(
                    state_entries.c.case_id == row.id, state_entries.c.state == row.state
                )
            ).scalar_one_or_none()
            insert_state_entry(conn).execute(
                conn,
                {
                    "case_id": row.id,
                    "state": to_state,
                    "first_entered_at": first or row.state_entered_at,
                },
            )
        return self._append(
            conn,
            row,
            wf,
            definition_id,
            to_state,
            MIGRATED_TRIGGER,
            payload,
            SYSTEM_ACTOR,
            {"definition_id": definition_id, "state": to_state, "deadline_at": deadline_at},
        )

    def _append(
        self,
        conn: Connection,
        row: Any,
        wf: Workflow,
        definition_id: int,
        to_state: str,
        trigger: str,
        payload: Mapping[str, Any],
        actor: str,
        values: Mapping[str, Any] | None = None,
    ) -> int:
        """A history entry that enters no new state (see :meth:`note`), with the case
        row's own *values* changed in the same update."""
        revision: int = row.revision + 1
        now = self.clock.now()
        change = Change(
            case_id=row.id,
            workflow=wf,
            definition_id=definition_id,
            unit=row.unit_code,
            actor=actor,
            trigger=trigger,
            transition=None,
            from_state=row.state,
            to_state=to_state,
            data=row.data,
            payload=dict(payload),
            at=now,
            seq=revision,
        )
        entry = HistoryRow.of(change, row.head_hash or self._head(conn, row.id))
        done = conn.execute(
            update(cases)
            .where(cases.c.id == row.id, cases.c.revision == row.revision)
            .values(revision=revision, updated_at=now, head_hash=entry.hash, **(values or {}))
        )
        if done.rowcount != 1:
            raise VersionConflict(row.id, row.revision, revision)
        self._record(conn, entry)
        t = timers.c
        conn.execute(
            update(timers)
            .where(
                t.case_id == row.id,
                (t.status == "pending") | (t.status == "failed"),
                t.case_revision == row.revision,
            )
            .values(case_revision=revision)
        )
        return revision

    def _idempotent(
        self,
        actor: str,
        key: str | None,
        request: dict[str, Any],
        work: Callable[[Connection], CaseView],
    ) -> CaseView:
        """Run *work* in one transaction; with a *key*, claim the key first.

        The claim is an insert of the key's row before any work, so a twin with
        the same key (a client's or a load balancer's retry while the first is
        still in flight) blocks on that row, then replays the first answer once
        it commits — or does the work itself if the first was refused or died
        (its claim rolled back with it).  It never sees the state the first
        request produced as if it were its own request's starting point.
        """
        with transaction(self.engine) as conn:
            if key is not None:
                replay = self._claim(conn, actor, key, _digest(request), request["op"])
                if replay is not None:
                    return replay
            view = work(conn)
            if key is not None:
                conn.execute(
                    update(idempotency)
                    .where(idempotency.c.actor == actor, idempotency.c.key == key)
                    .values(response=jsonable(view.as_dict()))
                )
            return view

    def _claim(
        self, conn: Connection, actor: str, key: str, digest: str, kind: str
    ) -> CaseView | None:
        """Claim *key* for this request (``None``: go ahead), or the answer already given.

        PostgreSQL: a concurrent claim of the same key waits on the uncommitted
        row, at most :attr:`claim_wait_ms`, then :class:`RequestInProgress`.
        SQLite: writers already queue on the database lock (``BEGIN IMMEDIATE``).
        The claim row is written with an empty answer and completed in the same
        transaction, so no other transaction ever sees it unanswered.
        """
        # RETURNING tells whether the row was inserted (psycopg reports no rowcount here).
        claim = (
            insert_or_ignore(idempotency, conn)
            .values(
                actor=actor,
                key=key,
                request_hash=digest,
                kind=kind,
                response={},
                created_at=self.clock.now(),
            )
            .returning(idempotency.c.key)
        )
        try:
            with lock_wait_limit(conn, self.claim_wait_ms):
                claimed = conn.execute(claim).first() is not None
        except LockTimedOut as exc:
            raise RequestInProgress(key, self.claim_wait_ms) from exc
        if claimed:
            return None
        replay = self._replay(conn, actor, key, digest)
        if replay is None:  # the conflicting row vanished between insert and select
            raise StorageUnavailable(f"idempotency key {key!r} could not be claimed; try again")
        return replay

    def _replay(self, conn: Connection, actor: str, key: str, digest: str) -> CaseView | None:
        row = conn.execute(
            select(idempotency.c.request_hash, idempotency.c.response).where(
                idempotency.c.actor == actor, idempotency.c.key == key
            )
        ).one_or_none()
        if row is None:
            return None
        if row.request_hash != digest:
            raise IdempotencyMismatch(key)
        return view_from_dict(row.response)

    def _create(
        self,
        conn: Connection,
        workflow: str,
        unit: str,
        actor: str,
        data: Mapping[str, Any],
        origin: Mapping[str, str] | None = None,
    ) -> CaseView:
        definition_id, version = self.catalog.latest(conn, workflow)
        compiled = self.catalog.compiled(conn, definition_id)
        wf = compiled.workflow
        unit_row = conn.execute(UNIT_WITH_STAMP, {"code": unit}).one_or_none()
        if unit_row is None:
            raise UnknownUnit(unit)
        if not unit_row.active:
            raise InvalidData({"unit": f"unit {unit!r} is no longer active"})
        self._authorize(
            conn,
            actor,
            unit_row.path,
            [str(r) for r in wf.roles],
            f"open a {workflow} case",
            unit_row.grid_stamp,
        )
        clean = _case_data(wf.fields, {}, data, complete=True)
        now = self.clock.now()
        case_id = next_id(conn, "C", now)
        final = wf.state(wf.initial).final
        change = Change(
            case_id=case_id,
            workflow=wf,
            definition_id=definition_id,
            unit=unit,
            actor=actor,
            trigger=CREATE_TRIGGER,
            transition=None,
            from_state=None,
            to_state=wf.initial,
            data=clean,
            payload={**clean, "origin": dict(origin)} if origin else clean,
            at=now,
            seq=1,
        )
        entry = HistoryRow.of(change, GENESIS)
        INSERT_CASE.execute(
            conn,
            {
                "id": case_id,
                "workflow": wf.id,
                "definition_id": definition_id,
                "state": wf.initial,
                "unit_code": unit,
                "data": clean,
                "revision": 1,
                "escalation_level": 0,
                "opened_at": now,
                "state_entered_at": now,
                "closed_at": now if final else None,
                "updated_at": now,
                "created_by": actor,
                "head_hash": entry.hash,
            },
        )
        self._record(conn, entry)
        extra = self._effects(conn, change)
        if change.case_values:  # the row exists before its timers (they refer to it)
            set_case_columns(tuple(change.case_values)).execute(
                conn, {"p_id": case_id, **change.case_values}
            )
        view = CaseView(
            id=case_id,
            workflow=wf.id,
            version=version,
            definition_id=definition_id,
            state=wf.initial,
            state_title=wf.state(wf.initial).title,
            unit=unit,
            data=clean,
            revision=1,
            escalation_level=0,
            opened_at=now,
            state_entered_at=now,
            closed_at=now if final else None,
            updated_at=now,
            created_by=actor,
            extra=extra,
        )
        return view

    def _event(
        self,
        conn: Connection,
        case_id: str,
        trigger: str,
        actor: str,
        payload: dict[str, Any],
        expected: int | None,
        viewer: Viewer = ADMIN,
    ) -> CaseView:
        lock = lock_case(conn.dialect.name, not viewer.everything)
        row = conn.execute(lock, lock_params(case_id, viewer)).one_or_none()
        if row is None:
            raise UnknownCase(case_id)
        if expected is not None and expected != row.revision:
            raise VersionConflict(case_id, expected, row.revision)
        compiled = self.catalog.compiled(conn, row.definition_id)
        wf = compiled.workflow
        state = row.state
        candidates = compiled.options(state, trigger)  # the machine's; or refused
        for gate in self.gates:
            gate.check(conn, row, wf, trigger, actor)
        held = self._roles(
            conn, actor, row.unit_code, f"fire {trigger!r}", row.unit_path, row.grid_stamp
        )
        if not any(_permits(t, held, actor) for t in candidates):
            needed = sorted({str(r) for t in candidates for r in t.roles})
            raise NotPermitted(actor, f"fire {trigger!r}", row.unit_code, needed)
        declared = self._accepted(row.definition_id, wf, state, trigger, candidates)
        typed, problems = validate_data(declared.values(), payload)
        if problems:
            raise InvalidData(problems)
        env = {**row.data, **typed}
        taken = compiled.fire(state, trigger, env)
        if taken is None:
            raise GuardFailed(trigger, [t.when or "" for t in candidates])
        chosen = taken.transition
        if not _permits(chosen, held, actor):
            raise NotPermitted(
                actor,
                f"fire {trigger!r} ({chosen.label})",
                row.unit_code,
                [str(r) for r in chosen.roles],
            )
        missing = {n: "is required" for n in chosen.requires if typed.get(n) is None}
        if missing:
            raise InvalidData(missing)
        updates = {k: v for k, v in typed.items() if wf.field(k) is not None}
        data = _case_data(wf.fields, row.data, updates, complete=True)
        now = self.clock.now()
        revision = row.revision + 1
        dest = wf.state(taken.state)
        closed_at = now if dest.final else None
        change = Change(
            case_id=case_id,
            workflow=wf,
            definition_id=row.definition_id,
            unit=row.unit_code,
            actor=actor,
            trigger=trigger,
            transition=chosen,
            from_state=state,
            to_state=dest.name,
            data=data,
            payload=typed,
            at=now,
            seq=revision,
        )
        entry = HistoryRow.of(change, row.head_hash or self._head(conn, case_id))
        self._record(conn, entry)
        extra = self._effects(conn, change)
        # The case row last, with what the effects decided (its deadline): one update.
        done = update_case(tuple(change.case_values)).execute(
            conn,
            {
                "p_id": case_id,
                "p_revision": row.revision,
                "state": dest.name,
                "data": data,
                "revision": revision,
                "escalation_level": 0,
                "state_entered_at": now,
                "closed_at": closed_at,
                "updated_at": now,
                "head_hash": entry.hash,
                **change.case_values,
            },
        )
        if done.rowcount != 1:
            raise VersionConflict(case_id, row.revision, row.revision + 1)
        version = self.catalog.version_number(conn, row.definition_id)
        return CaseView(
            id=case_id,
            workflow=wf.id,
            version=version,
            definition_id=row.definition_id,
            state=dest.name,
            state_title=dest.title,
            unit=row.unit_code,
            data=data,
            revision=revision,
            escalation_level=0,
            opened_at=row.opened_at,
            state_entered_at=now,
            closed_at=closed_at,
            updated_at=now,
            created_by=row.created_by,
            extra=extra,
        )

    def _accepted(
        self,
        definition_id: int,
        wf: Workflow,
        state: str,
        trigger: str,
        candidates: list[TransitionSpec],
    ) -> dict[str, FieldSpec]:
        key = (definition_id, state, trigger)
        specs = self._payload_specs.get(key)
        if specs is None:
            specs = self._payload_specs.setdefault(key, _payload_specs(wf, candidates))
        return specs

    def _head(self, conn: Connection, case_id: str) -> str:
        """The newest history hash, for rows written before cases.head_hash existed."""
        head: str = conn.execute(
            select(history.c.hash)
            .where(history.c.case_id == case_id)
            .order_by(history.c.seq.desc())
            .limit(1)
        ).scalar_one()
        return head

    def _record(self, conn: Connection, entry: HistoryRow) -> None:
        """Append the history row and mark the state's first entry."""
        INSERT_HISTORY.execute(conn, {**entry.values, "prev_hash": entry.prev, "hash": entry.hash})
        insert_state_entry(conn).execute(
            conn,
            {
                "case_id": entry.values["case_id"],
                "state": entry.values["to_state"],
                "first_entered_at": entry.values["at"],
            },
        )

    def _effects(self, conn: Connection, change: Change) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        for effect in self.effects:
            extra.update(effect.on_change(conn, change))
        return extra

    # -- permissions -----------------------------------------------------
    def _roles(
        self,
        conn: Connection,
        actor: str,
        unit: str,
        action: str,
        path: str,
        stamp: int | None = None,
    ) -> set[str]:
        """``LEVEL.ROLE`` the active *actor* holds on the chain of *path*, from the
        per-process cache while the grid *stamp* (read in the caller's transaction)
        is the one it was filled at."""
        if actor == SYSTEM_ACTOR:
            return {SYSTEM_ROLE}
        try:
            holdings = self.held.of(conn, actor, stamp)
        except UnknownPerson:
            raise NotPermitted(actor, action, unit, [], "unknown actor") from None
        if not holdings.active:
            raise NotPermitted(actor, action, unit, [], "the actor has been deactivated")
        return holdings.on_path(path)

    def _authorize(
        self,
        conn: Connection,
        actor: str,
        path: str,
        roles: list[str],
        action: str,
        stamp: int | None = None,
    ) -> None:
        unit = path.strip("/").rsplit("/", 1)[-1]
        held = self._roles(conn, actor, unit, action, path, stamp)
        if (roles and not held & set(roles)) or not held:
            raise NotPermitted(
                actor, action, unit, roles, "" if held else "it holds no role on this unit's chain"
            )

    # -- reading ---------------------------------------------------------
    # Every read takes the *viewer* (default: the administrator, who sees everything);
    # a case outside the viewer's scope (engine.grid.visibility) is UnknownCase, as if it
    # did not exist.
    def get_case(self, case_id: str, *, viewer: Viewer | str = ADMIN) -> CaseView:
        with connection(read_only(self.engine)) as conn:
            return self._get(conn, case_id, viewer)

    def _get(self, conn: Connection, case_id: str, viewer: Viewer | str = ADMIN) -> CaseView:
        row = conn.execute(
            select(cases, workflow_versions.c.version)
            .join(workflow_versions, workflow_versions.c.id == cases.c.definition_id)
            .join(units, units.c.code == cases.c.unit_code)
            .where(cases.c.id == case_id, visible_case(viewer, units.c.path, cases.c.id))
        ).one_or_none()
        if row is None:
            raise UnknownCase(case_id)
        return self._view(conn, row)

    def _view(self, conn: Connection, row: Any) -> CaseView:
        wf = self.catalog.compiled(conn, row.definition_id).workflow
        title = wf.state(row.state).title if wf.has_state(row.state) else row.state
        return CaseView(
            id=row.id,
            workflow=row.workflow,
            version=row.version,
            definition_id=row.definition_id,
            state=row.state,
            state_title=title,
            unit=row.unit_code,
            data=row.data,
            revision=row.revision,
            escalation_level=row.escalation_level,
            opened_at=row.opened_at,
            state_entered_at=row.state_entered_at,
            closed_at=row.closed_at,
            updated_at=row.updated_at,
            created_by=row.created_by,
        )

    def list_cases(
        self, f: CaseFilter | None = None, *, viewer: Viewer | str = ADMIN
    ) -> list[CaseView]:
        """Cases in id order, a page of ``f.limit`` (at most 1000) after ``f.after``;
        the viewer's scope is in the query, so a page is full whatever other units hold."""
        f = f or CaseFilter()
        stmt = (
            select(cases, workflow_versions.c.version)
            .join(workflow_versions, workflow_versions.c.id == cases.c.definition_id)
            .join(units, units.c.code == cases.c.unit_code)
            .where(visible(viewer, units.c.path))
            .order_by(cases.c.id)
            .limit(max(1, min(f.limit, 1000)))
        )
        if f.workflow is not None:
            stmt = stmt.where(cases.c.workflow == f.workflow)
        if f.state is not None:
            stmt = stmt.where(cases.c.state == f.state)
        if f.open is not None:
            stmt = stmt.where(
                cases.c.closed_at.is_(None) if f.open else cases.c.closed_at.is_not(None)
            )
        if f.after is not None:
            stmt = stmt.where(cases.c.id > f.after)
        if f.overdue is not None:
            late = cases.c.closed_at.is_(None) & (cases.c.deadline_at < self.clock.now())
            stmt = stmt.where(late if f.overdue else ~late | cases.c.deadline_at.is_(None))
        if f.within is not None and not f.within:
            return []
        with connection(read_only(self.engine)) as conn:
            if f.unit is not None:
                prefix = grid.subtree_prefix(conn, f.unit)
                stmt = stmt.where(grid.in_subtree(units.c.path, prefix))
            if f.within is not None:
                prefixes = conn.execute(
                    select(units.c.path).where(units.c.code.in_(f.within))
                ).scalars()
                scope = [grid.in_subtree(units.c.path, p) for p in prefixes]
                if not scope:
                    return []
                stmt = stmt.where(sa.or_(*scope))
            return [self._view(conn, r) for r in conn.execute(stmt)]

    def history(self, case_id: str, *, viewer: Viewer | str = ADMIN) -> list[HistoryEntry]:
        with connection(read_only(self.engine)) as conn:
            self._exists(conn, case_id, viewer)
            rows = conn.execute(
                select(history).where(history.c.case_id == case_id).order_by(history.c.seq)
            )
            return [
                HistoryEntry(
                    seq=r.seq,
                    at=r.at,
                    actor=r.actor,
                    trigger=r.trigger,
                    from_state=r.from_state,
                    to_state=r.to_state,
                    payload=r.payload,
                    definition_id=r.definition_id,
                    hash=r.hash,
                )
                for r in rows
            ]

    def verify(self, case_id: str, *, viewer: Viewer | str = ADMIN) -> ChainReport:
        with connection(read_only(self.engine)) as conn:
            case = conn.execute(
                select(cases.c.revision, cases.c.head_hash)
                .join(units, units.c.code == cases.c.unit_code)
                .where(cases.c.id == case_id, visible(viewer, units.c.path))
            ).one_or_none()
            if case is None:
                raise UnknownCase(case_id)
            rows = conn.execute(
                select(history).where(history.c.case_id == case_id).order_by(history.c.seq)
            ).mappings()
            return verify_chain(case_id, (dict(r) for r in rows), case.revision, case.head_hash)

    def _exists(self, conn: Connection, case_id: str, viewer: Viewer | str = ADMIN) -> int:
        revision: int | None = conn.execute(
            select(cases.c.revision)
            .join(units, units.c.code == cases.c.unit_code)
            .where(cases.c.id == case_id, visible_case(viewer, units.c.path, cases.c.id))
        ).scalar_one_or_none()
        if revision is None:
            raise UnknownCase(case_id)
        return revision

    # -- bulk creation: engine/cases/batch.py ------------------------------
    def create_cases(
        self,
        workflow: str,
        items: Sequence[NewCase],
        actor: str,
        *,
        skip_invalid: bool = False,
        rejected: Sequence[Problem] = (),
        progress: Callable[[int, int], None] | None = None,
    ) -> BatchResult:
        """Open many cases in one transaction, as :meth:`create_case` opens one
        (see :mod:`engine.cases.batch`)."""
        from engine.cases.batch import create_cases  # batch builds on this module

        return create_cases(
            self,
            workflow,
            items,
            actor,
            skip_invalid=skip_invalid,
            rejected=rejected,
            progress=progress,
        )


def _permits(t: TransitionSpec, held: set[str], actor: str) -> bool:
    if actor == SYSTEM_ACTOR:
        return True  # the engine fires rung triggers whatever roles the transition names
    if not t.roles:
        return bool(held - {SYSTEM_ROLE})
    return bool(held & {str(r) for r in t.roles})


def _payload_specs(wf: Workflow, candidates: list[TransitionSpec]) -> dict[str, FieldSpec]:
    """Payload names a trigger accepts: its declared payload, then the case fields."""
    specs: dict[str, FieldSpec] = {}
    for t in candidates:
        for spec in t.payload:
            specs.setdefault(spec.name, spec)
    for spec in wf.fields:
        specs.setdefault(spec.name, _optional(spec))
    return specs


def _optional(spec: FieldSpec) -> FieldSpec:
    return FieldSpec(
        name=spec.name,
        type=spec.type,
        values=spec.values,
        min=spec.min,
        max=spec.max,
        items=spec.items,
        max_length=spec.max_length,
    )


def _case_data(
    specs: Sequence[FieldSpec],
    current: Mapping[str, Any],
    updates: Mapping[str, Any],
    *,
    complete: bool,
) -> dict[str, Any]:
    """Current data with *updates* applied and defaults filled in, checked in full."""
    merged = dict(current)
    merged.update(updates)
    for spec in specs:
        if spec.name not in merged and spec.default is not None:
            merged[spec.name] = spec.default
    required = [s.name for s in specs if s.required] if complete else []
    clean, problems = validate_data(specs, merged, require=required)
    if problems:
        raise InvalidData(problems)
    return clean


def _digest(request: Mapping[str, Any]) -> str:
    text = json.dumps(request, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
