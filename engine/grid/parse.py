"""Grid YAML text → a frozen, format-neutral :class:`Grid` (see :mod:`engine.grid.registry`).

Every problem is gathered and raised at once as :class:`GridError`, each with
``FILE:LINE:COL`` and a key path such as ``units[0].children[1].level``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import GridError, InvalidGeometry
from engine.yamlkit import MapNode, Node, NodeReader, did_you_mean, is_null, parse_yaml
from engine.yamlkit.nodes import SeqNode

__all__ = [
    "KINDS",
    "LEVELS",
    "LEVEL_RANK",
    "ROLE_NAME",
    "Grid",
    "GridPerson",
    "GridRole",
    "GridUnit",
    "parse_grid",
    "roles_in",
]

LEVELS: tuple[str, ...] = ("district", "town", "village", "group")
KINDS: tuple[str, ...] = ("person", "service")
LEVEL_RANK = {level: rank for rank, level in enumerate(LEVELS)}
ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_TOP_KEYS = ("units", "people", "boundaries")
_UNIT_KEYS = ("code", "name", "level", "parent", "children", "boundary")
_AREA_TYPES = ("Polygon", "MultiPolygon")
_PERSON_KEYS = ("id", "name", "kind", "phone", "email", "webhook", "roles")
_ROLE_KEYS = ("unit", "role")


# ---------------------------------------------------------------- neutral model


@dataclass(frozen=True)
class GridUnit:
    code: str
    name: str
    level: str
    parent_code: str | None
    path: str  # "/ddk/ddk-bq/": codes from the root, each followed by "/"
    depth: int  # 0 for a root
    boundary: dict[str, Any] | None = None  # GeoJSON Polygon or MultiPolygon, checked


@dataclass(frozen=True)
class GridRole:
    unit_code: str
    role: str


@dataclass(frozen=True)
class GridPerson:
    id: str
    name: str
    kind: str
    phone: str | None
    email: str | None
    webhook: str | None
    roles: tuple[GridRole, ...]


@dataclass(frozen=True)
class Grid:
    """A parsed grid; ``units`` lists every parent before its children."""

    units: tuple[GridUnit, ...]
    people: tuple[GridPerson, ...]


# ---------------------------------------------------------------- parsing


@dataclass
class _RawUnit:
    code: str | None
    name: str | None
    level: str | None
    parent_code: str | None
    node: MapNode
    where: str
    parent_node: Node | None = None  # the explicit `parent:` value
    boundary: dict[str, Any] | None = None


class _Parser(NodeReader):
    def __init__(self, filename: str) -> None:
        super().__init__(filename)
        self.raw_units: list[_RawUnit] = []

    def field_text(self, node: MapNode, key: str, path: str, *, required: bool) -> str | None:
        value = node.get(key)
        if is_null(value):
            if required:
                self.report(node, path, f"missing required key {key!r}")
            return None
        text = self.text(value, f"{path}.{key}", empty=False)
        return text.strip() if text is not None else None

    def code(self, node: MapNode, key: str, path: str, what: str) -> str | None:
        value = self.field_text(node, key, path, required=True)
        if value is not None and not _CODE.match(value):
            self.report(
                node.get(key) or node,
                f"{path}.{key}",
                f"bad {what} {value!r}: use letters, digits, '_', '.', '-'",
            )
            return None
        return value

    def field_choice(
        self, node: MapNode, key: str, path: str, allowed: Sequence[str]
    ) -> str | None:
        value = node.get(key)
        if is_null(value):
            if key == "level":
                self.report(node, path, f"missing required key {key!r}")
            return None
        return self.choice(value, f"{path}.{key}", allowed)

    def seq(self, node: Node | None, path: str) -> list[Node]:
        return [] if is_null(node) else self.items(node, path)

    # units ------------------------------------------------------------------

    def units(self, items: list[Node], path: str, parent: _RawUnit | None) -> None:
        for index, item in enumerate(items):
            where = f"{path}[{index}]"
            if not isinstance(item, MapNode):
                self.report(item, where, "a unit must be a mapping (code, name, level, ...)")
                continue
            self.mapping(item, where, allowed=_UNIT_KEYS)
            raw = _RawUnit(
                code=self.code(item, "code", where, "unit code"),
                name=self.field_text(item, "name", where, required=True),
                level=self.field_choice(item, "level", where, LEVELS),
                parent_code=parent.code if parent is not None else None,
                node=item,
                where=where,
            )
            boundary = item.get("boundary")
            if boundary is not None and not is_null(boundary):
                plain = (
                    boundary.plain()
                    if isinstance(boundary, (MapNode, SeqNode))
                    else getattr(boundary, "value", None)
                )
                raw.boundary = self.boundary(plain, f"{where}.boundary", boundary)
            explicit = item.get("parent")
            if explicit is not None:
                if parent is not None:
                    self.report(explicit, f"{where}.parent", "a nested unit's parent is implied")
                else:
                    raw.parent_code = self.code(item, "parent", where, "parent code")
                    raw.parent_node = explicit
            self.raw_units.append(raw)
            self.units(
                self.seq(item.get("children"), f"{where}.children"), f"{where}.children", raw
            )

    def boundary(self, value: Any, path: str, at: Node) -> dict[str, Any] | None:
        """A unit's boundary: a GeoJSON Polygon or MultiPolygon, checked like spots are
        (problems are reported at the node *at*)."""
        from engine.geo.shapes import as_geojson, parse_geometry

        try:
            geom = parse_geometry(value, path)
        except InvalidGeometry as exc:
            self.report(at, exc.where, exc.problem)
            return None
        if geom.geom_type not in _AREA_TYPES:
            self.report(at, path, f"a boundary is a Polygon or MultiPolygon, got {geom.geom_type}")
            return None
        return as_geojson(geom)

    def file_boundaries(self, node: Node, base: Path | None) -> None:
        """``boundaries: FILE.geojson`` — a FeatureCollection whose features name their
        unit in ``properties.code``; a unit's own ``boundary:`` wins."""
        name = self.text(node, "boundaries", empty=False)
        if name is None:
            return
        target = (base / name) if base is not None else Path(name)
        try:
            collection = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            self.report(node, "boundaries", f"cannot read {name}: {exc}")
            return
        features = collection.get("features") if isinstance(collection, dict) else None
        if not isinstance(features, list):
            self.report(node, "boundaries", f"{name} is not a GeoJSON FeatureCollection")
            return
        by_code = {raw.code: raw for raw in self.raw_units if raw.code is not None}
        for i, feature in enumerate(features):
            where = f"{name}: features[{i}]"
            props = feature.get("properties") if isinstance(feature, dict) else None
            code = props.get("code") if isinstance(props, dict) else None
            raw = by_code.get(str(code)) if code is not None else None
            if raw is None:
                hint = did_you_mean(str(code), by_code) if code is not None else ""
                self.report(
                    node, where, f"properties.code {code!r} is not a unit of this grid{hint}"
                )
                continue
            if raw.boundary is None:
                raw.boundary = self.boundary(feature, where, node)

    def resolve_units(self) -> tuple[GridUnit, ...]:
        by_code: dict[str, _RawUnit] = {}
        for raw in self.raw_units:
            if raw.code is None:
                continue
            first = by_code.get(raw.code)
            if first is not None:
                self.report(
                    raw.node.get("code") or raw.node,
                    f"{raw.where}.code",
                    f"duplicate unit code {raw.code!r} (first defined at line {first.node.line})",
                )
                continue
            by_code[raw.code] = raw
        for raw in by_code.values():
            parent = by_code.get(raw.parent_code) if raw.parent_code else None
            if raw.parent_node is not None and raw.parent_code and parent is None:
                hint = did_you_mean(raw.parent_code, by_code)
                self.report(
                    raw.parent_node,
                    f"{raw.where}.parent",
                    f"unknown parent unit {raw.parent_code!r}{hint}",
                )
            if (
                parent
                and raw.level
                and parent.level
                and LEVEL_RANK[raw.level] <= LEVEL_RANK[parent.level]
            ):
                self.report(
                    raw.node.get("level") or raw.node,
                    f"{raw.where}.level",
                    f"unit {raw.code!r} is a {raw.level} but its parent {parent.code!r} is a "
                    f"{parent.level}; a child's level must be below its parent's "
                    f"({' > '.join(LEVELS)})",
                )
        return self._ordered(by_code)

    def _ordered(self, by_code: dict[str, _RawUnit]) -> tuple[GridUnit, ...]:
        paths: dict[str, str] = {}
        reported: set[frozenset[str]] = set()
        for code in by_code:
            trail: list[str] = []
            current: str | None = code
            while current is not None and current not in paths and current in by_code:
                if current in trail:
                    members = trail[trail.index(current) :]
                    if frozenset(members) not in reported:
                        reported.add(frozenset(members))
                        raw = by_code[current]
                        cycle = " → ".join([*members, current])
                        self.report(raw.node, raw.where, f"units form a parent cycle: {cycle}")
                    break
                trail.append(current)
                current = by_code[current].parent_code
            else:
                base = paths.get(current, "/") if current is not None else "/"
                for step in reversed(trail):
                    base = paths[step] = f"{base}{step}/"
        result = [
            GridUnit(
                code=code,
                name=raw.name or "",
                level=raw.level or "",
                parent_code=raw.parent_code if raw.parent_code in by_code else None,
                path=paths[code],
                depth=paths[code].count("/") - 2,
                boundary=raw.boundary,
            )
            for code, raw in by_code.items()
            if code in paths
        ]
        return tuple(sorted(result, key=lambda unit: unit.depth))

    # people -----------------------------------------------------------------

    def people(self, items: list[Node], unit_codes: set[str]) -> tuple[GridPerson, ...]:
        result: list[GridPerson] = []
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            where = f"people[{index}]"
            if not isinstance(item, MapNode):
                self.report(item, where, "a person must be a mapping (id, name, roles, ...)")
                continue
            self.mapping(item, where, allowed=_PERSON_KEYS)
            person_id = self.code(item, "id", where, "person id")
            name = self.field_text(item, "name", where, required=True)
            kind = self.field_choice(item, "kind", where, KINDS) or "person"
            phone = self.field_text(item, "phone", where, required=False)
            email = self.field_text(item, "email", where, required=False)
            webhook = self.field_text(item, "webhook", where, required=False)
            if email is not None and "@" not in email:
                self.report(item.get("email") or item, f"{where}.email", f"bad email {email!r}")
            if webhook is not None and not webhook.startswith(("http://", "https://")):
                self.report(
                    item.get("webhook") or item,
                    f"{where}.webhook",
                    "webhook must be an http(s) URL",
                )
            roles = self.roles(item, where, unit_codes)
            if person_id is not None and person_id in seen:
                self.report(
                    item.get("id") or item,
                    f"{where}.id",
                    f"duplicate person id {person_id!r} (first defined at line {seen[person_id]})",
                )
                continue
            if person_id is not None:
                seen[person_id] = item.line
            if person_id is None or name is None:
                continue
            result.append(GridPerson(person_id, name, kind, phone, email, webhook, roles))
        return tuple(result)

    def roles(self, person: MapNode, path: str, unit_codes: set[str]) -> tuple[GridRole, ...]:
        result: list[GridRole] = []
        for index, item in enumerate(self.seq(person.get("roles"), f"{path}.roles")):
            where = f"{path}.roles[{index}]"
            if not isinstance(item, MapNode):
                self.report(item, where, "a role must be a mapping {unit: CODE, role: NAME}")
                continue
            self.mapping(item, where, allowed=_ROLE_KEYS)
            unit = self.field_text(item, "unit", where, required=True)
            role = self.field_text(item, "role", where, required=True)
            if unit is not None and unit not in unit_codes:
                hint = did_you_mean(unit, unit_codes)
                self.report(
                    item.get("unit") or item, f"{where}.unit", f"unknown unit {unit!r}{hint}"
                )
                unit = None
            if role is not None and not ROLE_NAME.match(role):
                self.report(
                    item.get("role") or item,
                    f"{where}.role",
                    f"bad role name {role!r}: lower-case letters, digits and '_'",
                )
                role = None
            if unit is None or role is None:
                continue
            entry = GridRole(unit, role)
            if entry in result:
                self.report(item, where, f"role {role!r} on {unit!r} is listed twice")
                continue
            result.append(entry)
        return tuple(result)


def parse_grid(text: str, filename: str = "<grid>") -> Grid:
    """Grid YAML → :class:`Grid`; raises :class:`GridError` listing every problem."""
    parser = _Parser(filename)
    root, problems = parse_yaml(text, filename)
    parser.diagnostics.extend(problems)
    if root is not None and not isinstance(root, MapNode):
        parser.report(root, "", "a grid file must be a mapping with 'units' and 'people'")
    grid = Grid((), ())
    if isinstance(root, MapNode):
        parser.keys(root, "", allowed=_TOP_KEYS)
        if root.get("units") is None:
            parser.report(root, "", "missing required key 'units'")
        parser.units(parser.seq(root.get("units"), "units"), "units", None)
        if not is_null(root.get("boundaries")):
            folder = Path(filename).parent if filename != "<grid>" else None
            parser.file_boundaries(root.get("boundaries"), folder)  # type: ignore[arg-type]
        unit_list = parser.resolve_units()
        codes = {raw.code for raw in parser.raw_units if raw.code is not None}
        people_list = parser.people(parser.seq(root.get("people"), "people"), codes)
        grid = Grid(unit_list, people_list)
    if parser.diagnostics:
        ordered = sorted(set(parser.diagnostics))
        raise GridError(
            "\n".join(str(d) for d in ordered),
            file=filename,
            diagnostics=[d.as_dict() for d in ordered],
        )
    return grid


def roles_in(grid_file: Grid) -> set[tuple[str, str]]:
    """Every (level, role) a parsed grid file gives someone."""
    level_of = {u.code: u.level for u in grid_file.units}
    return {(level_of[r.unit_code], r.role) for p in grid_file.people for r in p.roles}
