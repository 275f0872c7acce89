"""The grid registry: units (district → town → village → group), people, and their roles.

Three stages, with neutral data between them:

* :func:`parse_grid` — grid YAML text → a frozen :class:`Grid`; every problem
  is gathered and raised at once as :class:`GridError` with ``FILE:LINE:COL``;
* :func:`load_grid` — a :class:`Grid` (or its file) → the database, in one
  transaction: rows are updated in place; whatever the file no longer lists
  under the root units it names is deactivated, never deleted (cases and
  history keep pointing at it); other districts' subtrees are untouched, and
  :func:`remove_grid` takes a subtree out explicitly;
* role resolution — who holds ``LEVEL.ROLE`` on a unit's chain (the unit and
  its ancestors), for permissions and notification recipients.

A grid file::

    units:
      - code: ddk                # letters, digits, _ . - ; quote numeric codes
        name: 大渡口区
        level: district          # district | town | village | group
        children:
          - {code: ddk-bq, name: 八桥镇, level: town}
      - {code: ddk-bq-xh, name: 新华村, level: village, parent: ddk-bq}  # flat form
    people:
      - id: p-zhang
        name: 张伟
        phone: "13800000001"     # optional: phone, email, webhook
        kind: person             # person | service (an office's mailbox or webhook)
        roles:
          - {unit: ddk-bq, role: leader}
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, bindparam, func, select, tuple_

from engine.errors import GridError, UnknownPerson, UnknownUnit
from engine.grid.parse import (
    KINDS,
    LEVEL_RANK,
    LEVELS,
    ROLE_NAME,
    Grid,
    GridPerson,
    GridRole,
    GridUnit,
    parse_grid,
    roles_in,
)
from engine.store.db import storage_errors
from engine.store.tables import cases, people, person_roles, units

__all__ = [
    "KINDS",
    "LEVELS",
    "Grid",
    "GridPerson",
    "GridRole",
    "GridSummary",
    "GridUnit",
    "PersonRow",
    "UnitRow",
    "chain",
    "get_person",
    "get_unit",
    "held_roles",
    "holders",
    "holds_any_role",
    "in_subtree",
    "is_within",
    "load_grid",
    "parse_grid",
    "parse_role_ref",
    "person_roles_on_chain",
    "remove_grid",
    "roles_in",
    "roles_on_path",
    "subtree_prefix",
]


# ---------------------------------------------------------------- loading


@dataclass(frozen=True)
class GridSummary:
    """What :func:`load_grid` changed; reactivated rows count as updated (roles: added)."""

    units_added: int = 0
    units_updated: int = 0
    units_deactivated: int = 0
    people_added: int = 0
    people_updated: int = 0
    people_deactivated: int = 0
    roles_added: int = 0
    roles_deactivated: int = 0

    def __str__(self) -> str:
        return (
            f"units: {self.units_added} added, {self.units_updated} updated, "
            f"{self.units_deactivated} deactivated; people: {self.people_added} added, "
            f"{self.people_updated} updated, {self.people_deactivated} deactivated; "
            f"roles: {self.roles_added} added, {self.roles_deactivated} deactivated"
        )


def _read_source(source: str | os.PathLike[str] | Grid) -> Grid:
    if isinstance(source, Grid):
        return source
    is_path = isinstance(source, os.PathLike) or (
        "\n" not in source and (source.endswith((".yaml", ".yml")) or os.path.isfile(source))
    )
    if not is_path:
        return parse_grid(str(source))
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GridError(f"{path}: cannot read grid file: {exc}", file=str(path)) from None
    return parse_grid(text, str(path))


def load_grid(engine: Engine, source: str | os.PathLike[str] | Grid) -> GridSummary:
    """Load a grid file (a path), grid YAML text, or a parsed :class:`Grid` into the database.

    A file replaces only the subtrees of the root units it names: one
    installation serves several districts, each from its own file.  Units,
    roles and people of that subtree that the file no longer lists are
    deactivated; everything under other roots is left as it is.  One
    transaction; a grid with errors changes nothing.
    """
    grid = _read_source(source)
    roots = [u.code for u in grid.units if u.parent_code is None]
    with storage_errors(engine, "load the grid into"), engine.begin() as conn:
        scope = _subtree_codes(conn, roots) | {u.code for u in grid.units}
        unit_counts = _sync_units(conn, grid.units, scope)
        people_counts = _sync_people(conn, grid.people, scope)
        role_counts = _sync_roles(conn, grid.people, scope)
    return GridSummary(*unit_counts, *people_counts, *role_counts)


def remove_grid(engine: Engine, code: str, *, force: bool = False) -> GridSummary:
    """Deactivate the subtree of unit *code*: its units, their roles, and the people
    who held roles only there.  Refused while cases are open in it, unless *force*."""
    with storage_errors(engine, "remove a grid subtree from"), engine.begin() as conn:
        get_unit(conn, code)
        scope = _subtree_codes(conn, [code])
        open_cases = conn.execute(
            select(func.count())
            .select_from(cases)
            .where(cases.c.unit_code.in_(scope), cases.c.closed_at.is_(None))
        ).scalar_one()
        if open_cases and not force:
            raise GridError(
                f"unit {code!r} and its subtree have {open_cases} open case(s): close or "
                "transfer them first, or remove it anyway with --force",
                unit=code,
                open_cases=open_cases,
            )
        unit_counts = _sync_units(conn, (), scope)
        people_counts = _sync_people(conn, (), scope)
        role_counts = _sync_roles(conn, (), scope)
    return GridSummary(*unit_counts, *people_counts, *role_counts)


def _subtree_codes(conn: Connection, roots: Iterable[str]) -> set[str]:
    """The codes of every unit at or below *roots* in the database (any activity)."""
    codes: set[str] = set()
    for root in roots:
        path = conn.execute(select(units.c.path).where(units.c.code == root)).scalar()
        if path is not None:
            codes.update(
                conn.execute(select(units.c.code).where(in_subtree(units.c.path, path))).scalars()
            )
    return codes


def _apply(
    conn: Connection,
    table: Any,
    key: str,
    wanted: dict[Any, dict[str, Any]],
    existing: dict[Any, dict[str, Any]],
) -> tuple[int, int, int]:
    """Insert new rows, update changed ones, deactivate missing ones; return the counts.

    *existing* holds the rows this load may deactivate, plus any row it updates.
    """
    inserts = [row for k, row in wanted.items() if k not in existing]
    updates = [
        row
        for k, row in wanted.items()
        if k in existing and any(existing[k][c] != v for c, v in row.items())
    ]
    gone = [
        {key: k, "active": False}
        for k, row in existing.items()
        if row["active"] and k not in wanted
    ]
    if inserts:
        conn.execute(table.insert(), inserts)
    for batch in (updates, gone):
        if batch:
            columns = [c for c in batch[0] if c != key]
            stmt = (
                table.update()
                .where(table.c[key] == bindparam(f"k_{key}"))
                .values({c: bindparam(f"v_{c}") for c in columns})
            )
            conn.execute(
                stmt, [{f"k_{key}": r[key], **{f"v_{c}": r[c] for c in columns}} for r in batch]
            )
    return len(inserts), len(updates), len(gone)


def _sync_units(
    conn: Connection, grid_units: Iterable[GridUnit], scope: set[str]
) -> tuple[int, int, int]:
    wanted = {
        u.code: {
            "code": u.code,
            "name": u.name,
            "level": u.level,
            "parent_code": u.parent_code,
            "path": u.path,
            "depth": u.depth,
            "active": True,
            "boundary": u.boundary,
        }
        for u in grid_units
    }
    existing = {
        row["code"]: dict(row)
        for row in conn.execute(select(units)).mappings()
        if row["code"] in scope or row["code"] in wanted
    }
    return _apply(conn, units, "code", wanted, existing)


def _sync_people(
    conn: Connection, grid_people: Iterable[GridPerson], scope: set[str]
) -> tuple[int, int, int]:
    """People of the file; a person it no longer lists is deactivated only when
    every role they hold is inside *scope* (one person may serve two districts)."""
    wanted = {
        p.id: {
            "id": p.id,
            "name": p.name,
            "kind": p.kind,
            "phone": p.phone,
            "email": p.email,
            "webhook": p.webhook,
            "active": True,
        }
        for p in grid_people
    }
    units_held: dict[str, set[str]] = {}
    for person_id, unit_code in conn.execute(
        select(person_roles.c.person_id, person_roles.c.unit_code).where(person_roles.c.active)
    ):
        units_held.setdefault(person_id, set()).add(unit_code)
    existing = {
        row["id"]: dict(row)
        for row in conn.execute(select(people)).mappings()
        if row["id"] in wanted or (units_held.get(row["id"]) and units_held[row["id"]] <= scope)
    }
    return _apply(conn, people, "id", wanted, existing)


def _sync_roles(
    conn: Connection, grid_people: Iterable[GridPerson], scope: set[str]
) -> tuple[int, int]:
    existing: dict[Any, dict[str, Any]] = {}
    for row in conn.execute(select(person_roles)).mappings():
        existing[(row["person_id"], row["unit_code"], row["role"])] = dict(row)
    wanted: dict[Any, dict[str, Any]] = {}
    for person in grid_people:
        for role in person.roles:
            k = (person.id, role.unit_code, role.role)
            if k in existing:
                wanted[k] = {"id": existing[k]["id"], "active": True}
            else:
                wanted[k] = {"person_id": person.id, "unit_code": role.unit_code, "role": role.role}
    wanted_by_id = {row["id"]: row for row in wanted.values() if "id" in row}
    by_id = {
        row["id"]: row
        for row in existing.values()
        if row["unit_code"] in scope or row["id"] in wanted_by_id
    }
    added = [row for row in wanted.values() if "id" not in row]
    if added:
        conn.execute(person_roles.insert(), added)
    _, reactivated, deactivated = _apply(conn, person_roles, "id", wanted_by_id, by_id)
    return len(added) + reactivated, deactivated


# ---------------------------------------------------------------- resolution


@dataclass(frozen=True)
class UnitRow:
    code: str
    name: str
    level: str
    parent_code: str | None
    path: str
    depth: int
    active: bool


@dataclass(frozen=True)
class PersonRow:
    id: str
    name: str
    kind: str
    phone: str | None
    email: str | None
    webhook: str | None
    active: bool


def _unit(row: Any) -> UnitRow:
    return UnitRow(
        row.code, row.name, row.level, row.parent_code, row.path, row.depth, bool(row.active)
    )


def _person(row: Any) -> PersonRow:
    return PersonRow(
        row.id, row.name, row.kind, row.phone, row.email, row.webhook, bool(row.active)
    )


def parse_role_ref(ref: str) -> tuple[str, str]:
    """``"town.leader"`` → ``("town", "leader")``; a malformed reference raises GridError."""
    level, dot, role = ref.partition(".")
    if not dot or level not in LEVEL_RANK or not ROLE_NAME.match(role):
        raise GridError(
            f"bad role reference {ref!r}: expected LEVEL.ROLE with LEVEL one of "
            f"{'|'.join(LEVELS)} (e.g. 'town.leader')",
            ref=ref,
        )
    return level, role


# The hot lookups, built once (building a statement costs more than running it here).
_UNIT = select(units).where(units.c.code == bindparam("code"))
_UNITS = select(units).where(units.c.code.in_(bindparam("codes", expanding=True)))
_UNIT_PATH = select(units.c.path).where(units.c.code == bindparam("code"))
_PERSON = select(people).where(people.c.id == bindparam("id"))
_PEOPLE = select(people).where(people.c.id.in_(bindparam("ids", expanding=True)))
_HELD = (
    select(people, units.c.level.label("held_level"), person_roles.c.role.label("held"))
    .join(person_roles, person_roles.c.person_id == people.c.id)
    .join(units, units.c.code == person_roles.c.unit_code)
    .where(
        units.c.code.in_(bindparam("codes", expanding=True)),
        tuple_(units.c.level, person_roles.c.role).in_(bindparam("pairs", expanding=True)),
    )
    .order_by(units.c.depth.desc(), people.c.id)
)
_HELD_ACTIVE = _HELD.where(person_roles.c.active.is_(True), people.c.active.is_(True))
_ROLES_ON_PATH = (
    select(units.c.level, person_roles.c.role)
    .join(units, units.c.code == person_roles.c.unit_code)
    .where(
        person_roles.c.person_id == bindparam("person_id"),
        person_roles.c.active.is_(True),
        units.c.code.in_(bindparam("codes", expanding=True)),
    )
)


def get_unit(conn: Connection, code: str) -> UnitRow:
    row = conn.execute(_UNIT, {"code": code}).one_or_none()
    if row is None:
        raise UnknownUnit(code)
    return _unit(row)


def get_person(conn: Connection, person_id: str) -> PersonRow:
    row = conn.execute(_PERSON, {"id": person_id}).one_or_none()
    if row is None:
        raise UnknownPerson(person_id)
    return _person(row)


def _chain_codes(conn: Connection, unit_code: str) -> list[str]:
    path: str | None = conn.execute(_UNIT_PATH, {"code": unit_code}).scalar_one_or_none()
    if path is None:
        raise UnknownUnit(unit_code)
    return path.strip("/").split("/")


def chain(conn: Connection, unit_code: str) -> list[UnitRow]:
    """The unit and its ancestors, nearest first."""
    codes = _chain_codes(conn, unit_code)
    rows = conn.execute(_UNITS, {"codes": codes}).all()
    return sorted((_unit(r) for r in rows), key=lambda u: -u.depth)


PERSON_PREFIX = "person:"  # a notification's "roles" entry naming one person: person:ID


def holders(
    conn: Connection, unit_code: str, role_ref: str, *, include_inactive: bool = False
) -> list[PersonRow]:
    """Active people holding active ROLE on the LEVEL unit of *unit_code*'s chain
    (*role_ref* ``LEVEL.ROLE``), or the person *role_ref* ``person:ID`` names.

    With *include_inactive*, people deactivated since also come back (their
    ``active`` is false), so a sender can record whom it skipped.
    """
    return holders_by_role(conn, unit_code, [role_ref], include_inactive=include_inactive)[role_ref]


def holders_by_role(
    conn: Connection,
    unit_code: str,
    role_refs: Sequence[str],
    *,
    include_inactive: bool = False,
    path: str | None = None,
) -> dict[str, list[PersonRow]]:
    """:func:`holders` of each of *role_refs* at once: one query for the chain, one for
    every ``LEVEL.ROLE`` together, one for every ``person:ID`` together.  A caller that
    read the unit's materialized *path* with its own query passes it: no chain query."""
    found: dict[str, list[PersonRow]] = {ref: [] for ref in role_refs}
    named = {ref[len(PERSON_PREFIX) :]: ref for ref in found if ref.startswith(PERSON_PREFIX)}
    pairs = {parse_role_ref(ref): ref for ref in found if not ref.startswith(PERSON_PREFIX)}
    if named:
        rows = conn.execute(_PEOPLE, {"ids": sorted(named)}).all()
        for row in rows:
            if include_inactive or row.active:
                found[named[row.id]].append(_person(row))
    if pairs:
        codes = path.strip("/").split("/") if path else _chain_codes(conn, unit_code)
        stmt = _HELD if include_inactive else _HELD_ACTIVE
        seen: dict[str, dict[str, PersonRow]] = {ref: {} for ref in pairs.values()}
        for row in conn.execute(stmt, {"codes": codes, "pairs": sorted(pairs)}):
            seen[pairs[(row.held_level, row.held)]].setdefault(row.id, _person(row))
        for ref, people_of in seen.items():
            found[ref] = list(people_of.values())
    return found


def person_roles_on_chain(conn: Connection, person_id: str, unit_code: str) -> set[str]:
    """``LEVEL.ROLE`` strings *person_id* holds on *unit_code*'s chain (none if inactive)."""
    person = get_person(conn, person_id)
    path = get_unit(conn, unit_code).path
    return roles_on_path(conn, person_id, path) if person.active else set()


def roles_on_path(conn: Connection, person_id: str, path: str) -> set[str]:
    """``LEVEL.ROLE`` strings *person_id* holds on the units of a materialized *path*.

    The caller has the unit's path already (and has checked the person is
    active), so this is one query — the hot path of every event.
    """
    codes = path.strip("/").split("/")
    rows = conn.execute(_ROLES_ON_PATH, {"person_id": person_id, "codes": codes})
    return {f"{level}.{role}" for level, role in rows}


def is_within(conn: Connection, unit_code: str, ancestor_code: str) -> bool:
    """Whether *unit_code* is *ancestor_code* or lies below it."""
    unit_path = get_unit(conn, unit_code).path
    return unit_path.startswith(subtree_prefix(conn, ancestor_code))


def held_roles(conn: Connection) -> set[tuple[str, str]]:
    """Every (level, role) some active person holds on an active unit of that level."""
    rows = conn.execute(
        select(units.c.level, person_roles.c.role)
        .join(units, units.c.code == person_roles.c.unit_code)
        .join(people, people.c.id == person_roles.c.person_id)
        .where(person_roles.c.active.is_(True), people.c.active.is_(True), units.c.active.is_(True))
        .distinct()
    ).all()
    return {(level, role) for level, role in rows}


def holds_any_role(conn: Connection, person_id: str, roles: Iterable[str]) -> bool:
    """Whether *person_id* actively holds one of *roles* (``LEVEL.ROLE``) on any unit."""
    wanted = [parse_role_ref(r) for r in roles]
    if not wanted:
        return False
    rows = conn.execute(
        select(units.c.level, person_roles.c.role)
        .join(units, units.c.code == person_roles.c.unit_code)
        .join(people, people.c.id == person_roles.c.person_id)
        .where(
            person_roles.c.person_id == person_id,
            person_roles.c.active.is_(True),
            people.c.active.is_(True),
            units.c.active.is_(True),
        )
    ).all()
    return any((level, role) in wanted for level, role in rows)


def subtree_prefix(conn: Connection, code: str) -> str:
    """The path prefix shared by *code* and every unit below it (use with :func:`in_subtree`)."""
    return get_unit(conn, code).path


def in_subtree(path_column: ColumnElement[str], prefix: str) -> ColumnElement[bool]:
    """SQL condition: *path_column* lies in the subtree of *prefix*, case-sensitively everywhere.

    ``LIKE`` narrows (and can use an index); the ``substr`` comparison makes it
    exact on SQLite, whose ``LIKE`` ignores ASCII case.
    """
    return path_column.startswith(prefix, autoescape=True) & (
        func.substr(path_column, 1, len(prefix)) == prefix
    )
