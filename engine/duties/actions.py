"""Actions on a case that move no state: sign, transfer, acknowledge, supervise, ….

Every such action is one transaction, like an event: claim the idempotency key
(a retry replays the first answer), lock the case row with the viewer's scope
(a case the viewer does not see is :class:`~engine.errors.UnknownCase`, from the
same statement), read what the actor holds on the case's chain, let the action
check its input and write its own rows, then append its history entry (the
trigger is the action's name; from = to = the case's state) and answer with the
case as it is now.  A refusal raises before anything is written, so nothing of
it survives.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from engine.cases.records import CaseView
from engine.cases.service import SYSTEM_ACTOR, CaseService
from engine.cases.statements import lock_case, lock_params
from engine.definitions import Workflow
from engine.definitions.compiler import CompiledWorkflow
from engine.errors import NotPermitted, UnknownCase
from engine.grid.visibility import ADMIN, Viewer, as_viewer

__all__ = ["ActionContext", "CaseActions"]


@dataclass
class ActionContext:
    """What an action's work sees, inside the action's transaction."""

    conn: Connection
    case: Any  # the locked case row, with ``unit_path`` and ``grid_stamp``
    compiled: CompiledWorkflow
    actor: str
    held: set[str]  # LEVEL.ROLE the actor holds on the case's chain
    now: dt.datetime
    actions: CaseActions

    @property
    def workflow(self) -> Workflow:
        return self.compiled.workflow

    def roles_of(self, actor: str, action: str) -> set[str]:
        """What another person (an assignee) holds on the case's chain."""
        return self.actions.cases._roles(
            self.conn,
            actor,
            self.case.unit_code,
            action,
            self.case.unit_path,
            self.case.grid_stamp,
        )


# An action's work: check, write its rows, return the history entry's payload.
Work = Callable[[ActionContext], Mapping[str, Any]]


class CaseActions:
    """Runs actions on cases for the collaboration services (:mod:`engine.duties`)."""

    def __init__(self, cases: CaseService) -> None:
        self.cases = cases

    @property
    def clock(self) -> Any:
        return self.cases.clock

    def act(
        self,
        case_id: str,
        actor: str,
        action: str,
        request: Mapping[str, Any],
        work: Work,
        *,
        key: str | None = None,
        viewer: Viewer | str = ADMIN,
    ) -> CaseView:
        """Run *work* as the action named *action* (its history trigger) on the case.

        *request* is what the caller asked, for the idempotency digest (a retry with
        the same key and request replays the answer; another request with the key is
        :class:`~engine.errors.IdempotencyMismatch`)."""
        if actor == SYSTEM_ACTOR:
            raise NotPermitted(
                actor, action, "-", [], "the system actor is reserved for the engine"
            )
        scope = as_viewer(viewer)
        body = {"op": action, "case": case_id, **request}
        return self.cases._idempotent(
            actor,
            key,
            body,
            lambda conn: self.run(conn, case_id, actor, action, work, scope),
        )

    def run(
        self,
        conn: Connection,
        case_id: str,
        actor: str,
        action: str,
        work: Work,
        viewer: Viewer = ADMIN,
    ) -> CaseView:
        """:meth:`act`'s body, in the caller's transaction (the system uses it from a
        timer with *actor* ``system``)."""
        lock = lock_case(conn.dialect.name, not viewer.everything)
        row = conn.execute(lock, lock_params(case_id, viewer)).one_or_none()
        if row is None:
            raise UnknownCase(case_id)
        held = self.cases._roles(conn, actor, row.unit_code, action, row.unit_path, row.grid_stamp)
        ctx = ActionContext(
            conn=conn,
            case=row,
            compiled=self.cases.catalog.compiled(conn, row.definition_id),
            actor=actor,
            held=held,
            now=self.cases.clock.now(),
            actions=self,
        )
        payload = work(ctx)
        self.cases.note(conn, row, action, payload, actor=actor)
        return self.cases._get(conn, case_id)
