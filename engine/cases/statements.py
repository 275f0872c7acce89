"""The case service's hot statements, built once per dialect and executed with parameters.

Building a SQLAlchemy statement costs tens of microseconds (the expression
objects, then its cache key); a statement object built once keeps its cache
key, so executing it again only binds parameters.  The event path runs these:

* :func:`lock_case`: the case row with its unit's path and the grid stamp
  (for :class:`~engine.grid.held.HeldRoles`), ``FOR UPDATE OF cases`` on
  PostgreSQL, and with a viewer the one visibility rule in the same statement;
* the writes, as :class:`~engine.store.prepared.Prepared` (compiled once per
  dialect, run as driver SQL): :data:`INSERT_HISTORY`,
  :func:`insert_state_entry` (the state's first entry, once),
  :func:`update_case` (by id and the revision read), and for a new case
  :data:`INSERT_CASE` and :func:`set_case_columns` (its deadline).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, bindparam, insert, select, update

from engine.grid.held import GRID_STAMP
from engine.grid.visibility import VIEWER_PARAM, Viewer, visible_to_param
from engine.store import insert_or_ignore
from engine.store.prepared import Prepared
from engine.store.tables import case_transfers, cases, history, state_entries, units

__all__ = [
    "INSERT_CASE",
    "INSERT_HISTORY",
    "UNIT_WITH_STAMP",
    "insert_state_entry",
    "lock_case",
    "lock_params",
    "set_case_columns",
    "update_case",
]

HISTORY_COLUMNS = (
    "case_id",
    "seq",
    "at",
    "actor",
    "trigger",
    "from_state",
    "to_state",
    "payload",
    "definition_id",
    "hash_scheme",
    "prev_hash",
    "hash",
)
CREATE_COLUMNS = (
    "id",
    "workflow",
    "definition_id",
    "state",
    "unit_code",
    "data",
    "revision",
    "escalation_level",
    "opened_at",
    "state_entered_at",
    "closed_at",
    "updated_at",
    "created_by",
    "head_hash",
)
INSERT_CASE = Prepared(insert(cases), CREATE_COLUMNS)
INSERT_HISTORY = Prepared(insert(history), HISTORY_COLUMNS)
INSERT_STATE_ENTRY = {
    dialect: Prepared(
        insert_or_ignore(state_entries, dialect), ("case_id", "state", "first_entered_at")
    )
    for dialect in ("sqlite", "postgresql")
}
EVENT_COLUMNS = (
    "state",
    "data",
    "revision",
    "escalation_level",
    "state_entered_at",
    "closed_at",
    "updated_at",
    "head_hash",
)
_UPDATE_CASE = update(cases).where(
    cases.c.id == bindparam("p_id"), cases.c.revision == bindparam("p_revision")
)


@cache
def update_case(extra: tuple[str, ...] = ()) -> Prepared:
    """The event's update of the case row (parameters p_id and p_revision: the revision
    read under the lock), setting :data:`EVENT_COLUMNS` and the effects' *extra* ones."""
    return Prepared(_UPDATE_CASE, (*EVENT_COLUMNS, *extra, "p_id", "p_revision"))


_SET_CASE_COLUMNS = update(cases).where(cases.c.id == bindparam("p_id"))


@cache
def set_case_columns(columns: tuple[str, ...]) -> Prepared:
    """Columns effects decided for a case just inserted (parameter ``p_id``)."""
    return Prepared(_SET_CASE_COLUMNS, (*columns, "p_id"))


UNIT_WITH_STAMP = select(units, GRID_STAMP.label("grid_stamp")).where(
    units.c.code == bindparam("code")
)


# The id of the case's transfer waiting for its receiver (移送), read with the lock so
# the transfer gate (engine/duties/transfers.py) costs no statement of its own: one
# probe of ix_case_transfers_case_id_status.
PENDING_TRANSFER = (
    select(case_transfers.c.id)
    .where(case_transfers.c.case_id == cases.c.id, case_transfers.c.status == "pending")
    .limit(1)
    .scalar_subquery()
)


@cache
def lock_case(dialect: str, scoped: bool) -> sa.Select[Any]:
    """The locking read of one case (parameter ``case_id``); *scoped*: only if the
    viewer bound as ``viewer`` sees it.  Its ``pending_transfer`` is the id of a
    transfer waiting for its receiver (None: none)."""
    stmt = (
        select(
            cases,
            units.c.path.label("unit_path"),
            GRID_STAMP.label("grid_stamp"),
            PENDING_TRANSFER.label("pending_transfer"),
        )
        .join(units, units.c.code == cases.c.unit_code)
        .where(cases.c.id == bindparam("case_id"))
    )
    if scoped:
        stmt = stmt.where(visible_to_param(units.c.path))
    return stmt.with_for_update(of=cases) if dialect == "postgresql" else stmt


def lock_params(case_id: str, viewer: Viewer) -> dict[str, Any]:
    params = {"case_id": case_id}
    if not viewer.everything:
        params[VIEWER_PARAM] = viewer.actor
    return params


def insert_state_entry(conn: Connection) -> Prepared:
    """INSERT of a state's first entry that does nothing when it was entered before."""
    return INSERT_STATE_ENTRY[conn.dialect.name]
