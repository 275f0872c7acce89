"""Reading the grid for people: a unit with its chain, children and role holders;
the tree from the roots; who serves where.  Used by ``GET /grid/units/{code}``
and ``gengbao grid show|people``.  Contact details stay out of the unit view.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from engine import grid
from engine.tables import people, person_roles, units

__all__ = ["people_serving", "root_units", "unit_detail"]


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
    return {
        "code": unit.code,
        "name": unit.name,
        "level": unit.level,
        "parent": unit.parent_code,
        "path": unit.path,
        "active": unit.active,
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


def people_serving(conn: Connection, unit_code: str | None = None) -> list[dict[str, Any]]:
    """Active people and their active roles, in *unit_code*'s subtree (default: everywhere)."""
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
