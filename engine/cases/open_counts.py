"""Open cases counted per unit for a viewer: open, due soon, overdue (the overdue board).

:meth:`OpenCounts.below` answers for a list of units — the viewer's own outermost
units, or the children of one unit of their scope — each with the open cases of its
whole subtree: how many, how many are due within the horizon (24 hours unless told),
how many are past their current deadline.  One statement per call: the listed
units are joined to the cases of their subtrees by path prefix and the viewer's
visibility rule (:func:`~engine.grid.visibility.visible`) is in the query, so a
unit outside the scope is :class:`~engine.errors.UnknownUnit`, as everywhere.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Engine, func, select

from engine.clock import Clock
from engine.errors import UnknownUnit
from engine.grid.visibility import Viewer, as_viewer, visible
from engine.store import connection
from engine.store.db import read_only
from engine.store.tables import cases, person_roles, units

__all__ = ["DEFAULT_HORIZON", "OpenCounts", "UnitCount"]

DEFAULT_HORIZON = dt.timedelta(hours=24)


@dataclass(frozen=True, kw_only=True)
class UnitCount:
    code: str
    name: str
    level: str
    open: int
    due_soon: int  # not overdue, deadline within the horizon
    overdue: int
    children: int  # active child units (0: nothing to drill into)


class OpenCounts:
    def __init__(self, engine: Engine, clock: Clock, horizon: dt.timedelta = DEFAULT_HORIZON):
        self.engine = engine
        self.clock = clock
        self.horizon = horizon

    def below(self, unit: str | None, *, viewer: Viewer | str) -> list[UnitCount]:
        """Counts for the children of *unit* (None: the viewer's outermost units)."""
        scope = as_viewer(viewer)
        u = units.c
        with connection(read_only(self.engine)) as conn:
            if unit is None:
                held = select(person_roles.c.unit_code).where(
                    person_roles.c.person_id == scope.actor, person_roles.c.active.is_(True)
                )
                rows = conn.execute(
                    select(u.code, u.path).where(u.code.in_(held), u.active.is_(True))
                ).all()
                paths = sorted((r.path, r.code) for r in rows)
                targets: list[str] = []
                kept: list[str] = []
                for path, code in paths:  # an ancestor sorts before its descendants
                    if not any(path.startswith(k) for k in kept):
                        kept.append(path)
                        targets.append(code)
            else:
                seen = conn.execute(
                    select(u.code).where(u.code == unit, visible(scope, u.path))
                ).first()
                if seen is None:
                    raise UnknownUnit(unit)
                targets = list(
                    conn.execute(
                        select(u.code).where(u.parent_code == unit, u.active.is_(True))
                    ).scalars()
                )
            if not targets:
                return []
            return self._count(conn, targets, scope)

    def _count(self, conn: sa.Connection, targets: list[str], viewer: Viewer) -> list[UnitCount]:
        now = self.clock.now()
        soon = now + self.horizon
        t, cu, child = units.alias("t"), units.alias("cu"), units.alias("child")
        c = cases.c
        late = c.deadline_at < now
        near = (c.deadline_at >= now) & (c.deadline_at < soon)
        counted = (
            select(
                t.c.code,
                func.count(c.id).label("open"),
                func.count(sa.case((near, 1))).label("due_soon"),
                func.count(sa.case((late, 1))).label("overdue"),
            )
            .select_from(t)
            .join(cu, func.substr(cu.c.path, 1, func.length(t.c.path)) == t.c.path)
            .join(cases, (c.unit_code == cu.c.code) & c.closed_at.is_(None))
            .where(t.c.code.in_(targets), visible(viewer, cu.c.path))
            .group_by(t.c.code)
        )
        found = {r.code: r for r in conn.execute(counted)}
        kids = (
            select(func.count(child.c.code))
            .where(child.c.parent_code == t.c.code, child.c.active.is_(True))
            .scalar_subquery()
        )
        listed = conn.execute(
            select(t.c.code, t.c.name, t.c.level, kids.label("children"))
            .where(t.c.code.in_(targets))
            .order_by(t.c.code)
        ).all()
        return [
            UnitCount(
                code=r.code,
                name=r.name,
                level=r.level,
                open=found[r.code].open if r.code in found else 0,
                due_soon=found[r.code].due_soon if r.code in found else 0,
                overdue=found[r.code].overdue if r.code in found else 0,
                children=int(r.children),
            )
            for r in listed
        ]
