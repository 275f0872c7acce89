"""The grid service: reading the grid for people — a unit with its chain, children
and role holders; the tree from the roots; who serves where — and loading it.

:class:`GridViews` owns its connections; ``GET /grid/units/{code}``, ``gengbao
grid show|people|load|remove``, ``gengbao serve`` and ``/metrics`` ask it.  A
viewer sees the units of its own chain (:func:`engine.grid.visibility.on_chain`);
any other unit is UnknownUnit.  Contact details stay out of the unit view.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, select

from engine.errors import UnknownUnit
from engine.grid import registry as grid
from engine.grid.visibility import ADMIN, Viewer, on_chain, visible
from engine.store import connection
from engine.store.db import read_only
from engine.store.tables import people, person_roles, units

if TYPE_CHECKING:
    from engine.geo.locate import UnitLocator

__all__ = ["GridViews", "people_serving", "root_units", "unit_detail"]


class GridViews:
    """The grid of one database, read and loaded on connections of its own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load(self, source: str | os.PathLike[str] | grid.Grid) -> grid.GridSummary:
        """Load a grid file (see :func:`engine.grid.registry.load_grid`)."""
        return grid.load_grid(self.engine, source)

    def remove(self, code: str, *, force: bool = False) -> grid.GridSummary:
        """Deactivate a unit's subtree (see :func:`engine.grid.registry.remove_grid`)."""
        return grid.remove_grid(self.engine, code, force=force)

    def locator(self) -> UnitLocator:
        """A spatial index of the active units that have a boundary (for assigning
        spots and findings to units: :class:`engine.geo.locate.UnitLocator`)."""
        from engine.geo.locate import UnitLocator, UnitShape
        from engine.geo.shapes import parse_geometry

        with connection(read_only(self.engine)) as conn:
            rows = conn.execute(
                select(units.c.code, units.c.depth, units.c.boundary).where(
                    units.c.active.is_(True), units.c.boundary.is_not(None)
                )
            ).all()
        return UnitLocator(
            [UnitShape(r.code, r.depth, parse_geometry(r.boundary, r.code)) for r in rows]
        )

    def locate(self, geometry: Any) -> dict[str, Any] | None:
        """The unit GeoJSON *geometry* (a point or polygon, checked) belongs to — the lowest
        unit whose boundary contains it or overlaps it most — or None."""
        from engine.geo.shapes import parse_geometry

        shape = parse_geometry(geometry, "geometry")
        code = self.locator().locate(shape)
        if code is None:
            return None
        with connection(read_only(self.engine)) as conn:
            unit = grid.get_unit(conn, code)
        return {"code": unit.code, "name": unit.name, "level": unit.level}

    def unit(self, code: str, *, viewer: Viewer | str = ADMIN) -> dict[str, Any]:
        """A unit of *viewer*'s chain with its chain, children and role holders."""
        with connection(read_only(self.engine)) as conn:
            seen = conn.execute(
                select(units.c.code).where(units.c.code == code, on_chain(viewer, units.c.path))
            ).first()
            if seen is None:
                raise UnknownUnit(code)
            return unit_detail(conn, code)

    def roots(self, *, viewer: Viewer | str = ADMIN) -> list[dict[str, Any]]:
        """The active root units on *viewer*'s chain, each with its count of units."""
        with connection(read_only(self.engine)) as conn:
            shown = set(
                conn.execute(
                    select(units.c.code).where(
                        units.c.parent_code.is_(None), on_chain(viewer, units.c.path)
                    )
                ).scalars()
            )
            return [r for r in root_units(conn) if r["code"] in shown]

    def people(
        self, unit: str | None = None, *, viewer: Viewer | str = ADMIN
    ) -> list[dict[str, Any]]:
        """Active people and their active roles in *unit*'s subtree and *viewer*'s scope."""
        with connection(read_only(self.engine)) as conn:
            return people_serving(conn, unit, viewer)

    def names(self, ids: Iterable[str]) -> dict[str, str]:
        """The names of the people (or service accounts) with these ids, to show who did
        what in a case's history (which the viewer already sees by id)."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        with connection(read_only(self.engine)) as conn:
            rows = conn.execute(select(people.c.id, people.c.name).where(people.c.id.in_(wanted)))
            return {pid: name for pid, name in rows}

    def is_empty(self) -> bool:
        """Whether no grid has been loaded yet."""
        with connection(read_only(self.engine)) as conn:
            return conn.execute(select(units.c.code).limit(1)).first() is None

    def held_roles(self) -> set[tuple[str, str]]:
        """Every (level, role) some active person holds (:func:`registry.held_roles`)."""
        with connection(read_only(self.engine)) as conn:
            return grid.held_roles(conn)

    def holds_any_role(self, actor: str, roles: Iterable[str]) -> bool:
        """Whether *actor* actively holds one of *roles* (``LEVEL.ROLE``) on any unit."""
        with connection(read_only(self.engine)) as conn:
            return grid.holds_any_role(conn, actor, roles)


def _ref(u: grid.UnitRow) -> dict[str, Any]:
    return {"code": u.code, "name": u.name, "level": u.level}


def unit_detail(conn: Connection, code: str) -> dict[str, Any]:
    """A unit, its chain (ancestors, nearest first), active children and role holders."""
    unit = grid.get_unit(conn, code)
    ancestors = grid.chain(conn, code)[1:]
    children = conn.execute(
        select(units.c.code, units.c.name, units.c.level)
        .where(units.c.parent_code == code, units.c.active.is_(True))
        .order_by(units.c.code)
    ).all()
    holders = conn.execute(
        select(people.c.id, people.c.name, people.c.kind, person_roles.c.role)
        .join(person_roles, person_roles.c.person_id == people.c.id)
        .where(
            person_roles.c.unit_code == code,
            person_roles.c.active.is_(True),
            people.c.active.is_(True),
        )
        .order_by(person_roles.c.role, people.c.id)
    ).all()
    boundary = conn.execute(select(units.c.boundary).where(units.c.code == code)).scalar()
    return {
        "code": unit.code,
        "name": unit.name,
        "level": unit.level,
        "parent": unit.parent_code,
        "path": unit.path,
        "active": unit.active,
        "boundary": boundary,  # GeoJSON, for a map; None when the grid file gives none
        "chain": [_ref(u) for u in ancestors],
        "children": [{"code": c, "name": n, "level": lv} for c, n, lv in children],
        "roles": [
            {"person": p, "name": n, "kind": k, "role": f"{unit.level}.{r}"}
            for p, n, k, r in holders
        ],
    }


def root_units(conn: Connection) -> list[dict[str, Any]]:
    """The active root units (districts), each with its count of active units below."""
    roots = conn.execute(
        select(units).where(units.c.parent_code.is_(None), units.c.active.is_(True))
    ).all()
    out = []
    for row in sorted(roots, key=lambda r: r.code):
        below = conn.execute(
            select(units.c.code).where(
                grid.in_subtree(units.c.path, row.path), units.c.active.is_(True)
            )
        ).all()
        out.append({"code": row.code, "name": row.name, "level": row.level, "units": len(below)})
    return out


def people_serving(
    conn: Connection, unit_code: str | None = None, viewer: Viewer | str = ADMIN
) -> list[dict[str, Any]]:
    """Active people and their active roles, in *unit_code*'s subtree (default: everywhere)
    and the units *viewer* sees."""
    stmt = (
        select(
            people.c.id,
            people.c.name,
            people.c.kind,
            people.c.phone,
            people.c.email,
            units.c.code,
            units.c.level,
            person_roles.c.role,
        )
        .join(person_roles, person_roles.c.person_id == people.c.id)
        .join(units, units.c.code == person_roles.c.unit_code)
        .where(
            people.c.active.is_(True),
            person_roles.c.active.is_(True),
            units.c.active.is_(True),
            visible(viewer, units.c.path),
        )
        .order_by(people.c.id, units.c.path, person_roles.c.role)
    )
    if unit_code is not None:
        stmt = stmt.where(grid.in_subtree(units.c.path, grid.subtree_prefix(conn, unit_code)))
    found: dict[str, dict[str, Any]] = {}
    for pid, name, kind, phone, email, code, level, role in conn.execute(stmt):
        person = found.setdefault(
            pid,
            {"id": pid, "name": name, "kind": kind, "phone": phone, "email": email, "roles": []},
        )
        person["roles"].append({"unit": code, "role": f"{level}.{role}"})
    return list(found.values())
