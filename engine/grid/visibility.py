"""Who sees what: the one visibility rule, as a SQL clause.

A *viewer* is an actor of the grid (a person or a service account).  It sees
a unit — and so the cases, patrols and notifications of that unit — when the
unit lies in the subtree of an **active** unit where the viewer, while
**active**, holds an **active** role.  The administrator (:data:`ADMIN`: the
CLI's operator, the engine itself) sees everything.

Every service applies the rule in its query, with :func:`visible` on the
``path`` column of the row's unit, so a page of a list is full whatever the
other units hold, and a single row outside the scope reads as missing.  The
HTTP API, the CLI and the pages all go through the services, so they give the
same answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import ColumnElement, func, select

from engine.store.tables import case_transfers, people, person_roles, units

__all__ = [
    "ADMIN",
    "VIEWER_PARAM",
    "Viewer",
    "as_viewer",
    "on_chain",
    "visible",
    "visible_case",
    "visible_to_param",
]

VIEWER_PARAM = "viewer"

# The aliases the rule's subqueries read, made once: an alias builds its column
# collection on first use, which was most of the cost of building the rule per read.
# Every subquery names its own FROM (``correlate_except``), so one alias object can
# appear in several subqueries of one statement.
_SCOPE = units.alias("scope_unit")
_ROLE = person_roles.alias("scope_role")
_PERSON = people.alias("scope_person")
_SENT = case_transfers.alias("pending_transfer")
_RECEIVER = units.alias("receiving_unit")


@dataclass(frozen=True)
class Viewer:
    """The actor a read or an action is done for; ``everything``: the administrator."""

    actor: str
    everything: bool = False

    def __str__(self) -> str:
        return "(administrator)" if self.everything else self.actor


ADMIN = Viewer("(administrator)", everything=True)


def as_viewer(viewer: Viewer | str) -> Viewer:
    """A :class:`Viewer`; an actor id means that actor."""
    return viewer if isinstance(viewer, Viewer) else Viewer(viewer)


def visible(viewer: Viewer | str, unit_path: ColumnElement[str]) -> ColumnElement[bool]:
    """SQL condition: the unit whose materialized path is *unit_path* is in *viewer*'s scope."""
    return _holds(viewer, lambda scope: _starts(unit_path, scope))


def visible_case(
    viewer: Viewer | str, unit_path: ColumnElement[str], case_id: ColumnElement[str]
) -> ColumnElement[bool]:
    """:func:`visible` for one case read: its unit is in *viewer*'s scope, or a transfer
    of it waits for a unit in that scope (移送: the receiver reads what it is sent)."""
    who = as_viewer(viewer)
    if who.everything:
        return sa.true()
    sent, receiver = _SENT, _RECEIVER
    waiting = (
        select(sa.literal(1))
        .select_from(sent.join(receiver, receiver.c.code == sent.c.to_unit))
        .where(
            sent.c.case_id == case_id,
            sent.c.status == "pending",
            visible(who, receiver.c.path),
        )
        .correlate_except(sent, receiver)
    )
    return visible(who, unit_path) | waiting.exists()


def visible_to_param(unit_path: ColumnElement[str]) -> ColumnElement[bool]:
    """:func:`visible` for the viewer bound at execution as the parameter
    :data:`VIEWER_PARAM` (an actor id): the rule for a statement built once."""
    return _exists_held(sa.bindparam(VIEWER_PARAM, type_=sa.Text), lambda s: _starts(unit_path, s))


def on_chain(viewer: Viewer | str, unit_path: ColumnElement[str]) -> ColumnElement[bool]:
    """SQL condition: the unit is in *viewer*'s scope or above it (an ancestor of a unit
    where the viewer holds a role): the units of its own chain, as the grid shows them."""
    return _holds(viewer, lambda scope: _starts(unit_path, scope) | _starts(scope, unit_path))


def _starts(path: ColumnElement[str], prefix: ColumnElement[str]) -> ColumnElement[bool]:
    """An exact prefix test (``substr``), not ``LIKE``: unit codes may contain ``_``."""
    return func.substr(path, 1, func.length(prefix)) == prefix


def _holds(
    viewer: Viewer | str, where: Callable[[ColumnElement[str]], ColumnElement[bool]]
) -> ColumnElement[bool]:
    """A correlated ``EXISTS`` over the viewer's active roles on active units."""
    who = as_viewer(viewer)
    if who.everything:
        return sa.true()
    return _exists_held(who.actor, where)


def _exists_held(
    actor: str | ColumnElement[str], where: Callable[[ColumnElement[str]], ColumnElement[bool]]
) -> ColumnElement[bool]:
    scope, role, person = _SCOPE, _ROLE, _PERSON
    held = (
        select(sa.literal(1))
        .select_from(
            role.join(scope, scope.c.code == role.c.unit_code).join(
                person, person.c.id == role.c.person_id
            )
        )
        .where(
            role.c.person_id == actor,
            role.c.active.is_(True),
            person.c.active.is_(True),
            scope.c.active.is_(True),
            where(scope.c.path),
        )
        .correlate_except(scope, role, person)
    )
    return held.exists()
