"""Findings found by the grid through their shape: a case's geometry intersects them.

The SQL of :mod:`engine.assessment.sql` matches a finding to a case by reference
and by distance (a case ``location`` within the match radius of the finding's
point).  A finding with a shape (``survey_findings.geometry``: a point or a
polygon) is also found by a case whose geometry **intersects** it — any of the
case's top-level fields holding a GeoJSON Point, Polygon or MultiPolygon (a
field of type ``geometry``), or its ``location`` ``[lng, lat]``.  Candidates are
the same as the SQL's: cases in the finding's unit or below, opened before the
end of ``found_on``; the database narrows them to cases whose data holds some
shape, and shapely decides — one STRtree over the candidates' shapes, queried
with every finding's shape at once (a province's findings in one call).

:func:`geometry_hits` returns ``[finding_id, case_id]`` pairs as JSON text, the
``:geo_hits`` parameter that :meth:`~engine.assessment.sql.Dialect.hits` expands.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Container, Iterator, Mapping
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, Date, bindparam, text

from engine.assessment.sql import Dialect, descendants
from engine.errors import InvalidGeometry
from engine.geo.shapes import GEOMETRY_TYPES, parse_geometry

__all__ = ["case_shapes", "geometry_hits", "intersecting"]


def geometry_hits(
    conn: Connection,
    dialect: Dialect,
    date_from: dt.date | None,
    date_to: dt.date | None,
    workflow: str | None = None,
) -> str:
    """``[[finding_id, case_id], …]`` (JSON text): each finding with a shape, found on
    *date_from* … *date_to*, and each candidate case whose geometry intersects it."""
    where = ["geometry IS NOT NULL"]
    params: dict[str, Any] = {}
    binds = []
    if date_from is not None:
        where.append("found_on >= :d0")
        params["d0"] = date_from
        binds.append(bindparam("d0", type_=Date()))
    if date_to is not None:
        where.append("found_on <= :d1")
        params["d1"] = date_to
        binds.append(bindparam("d1", type_=Date()))
    wf = ""
    if workflow is not None:
        wf = "AND c.workflow = :workflow"
        params["workflow"] = workflow
    sql = f"""WITH f AS (
    SELECT id, unit_code, found_until, geometry FROM survey_findings WHERE {" AND ".join(where)}
),
below(id, code) AS (
    {descendants("f")}
)
SELECT f.id, f.geometry, c.id AS case_id, c.data
FROM below b JOIN f ON f.id = b.id JOIN cases c ON c.unit_code = b.code
WHERE c.opened_at < f.found_until {wf} AND {dialect.has_shape("c.data")}"""
    findings: dict[int, BaseGeometry] = {}
    cases: dict[str, list[BaseGeometry]] = {}
    allowed: set[tuple[int, str]] = set()
    for row in conn.execute(text(sql).bindparams(*binds), params):
        if row.id not in findings:
            shape = _shape(_plain(row.geometry))
            if shape is None:
                continue
            findings[row.id] = shape
        if row.case_id not in cases:
            cases[row.case_id] = list(case_shapes(_plain(row.data)))
        allowed.add((row.id, row.case_id))
    return json.dumps(intersecting(findings, cases, allowed))


def case_shapes(data: Mapping[str, Any]) -> Iterator[BaseGeometry]:
    """The shapes a case's data holds: GeoJSON geometry values and ``location``."""
    for name, value in data.items():
        if isinstance(value, Mapping) and value.get("type") in GEOMETRY_TYPES:
            shape = _shape(value)
            if shape is not None:
                yield shape
        elif name == "location" and _is_point(value):
            yield shapely.Point(float(value[0]), float(value[1]))


def intersecting(
    findings: dict[int, BaseGeometry],
    cases: dict[str, list[BaseGeometry]],
    allowed: Container[tuple[int, str]],
) -> list[list[Any]]:
    """``[finding_id, case_id]`` of each *allowed* pair whose shapes intersect, sorted:
    one STRtree over every case shape, queried with every (prepared) finding at once."""
    owners = [case_id for case_id, shapes in cases.items() for _ in shapes]
    shapes = [shape for found in cases.values() for shape in found]
    if not findings or not shapes:
        return []
    ids = list(findings)
    tree = shapely.STRtree(np.array(shapes, dtype=object))
    probes = np.array([findings[i] for i in ids], dtype=object)
    shapely.prepare(probes)
    which, hit = tree.query(probes, predicate="intersects")
    pairs = {(ids[int(i)], owners[int(s)]) for i, s in zip(which, hit, strict=True)}
    return [[f, c] for f, c in sorted(p for p in pairs if p in allowed)]


def _shape(value: Any) -> BaseGeometry | None:
    try:
        return parse_geometry(value)
    except InvalidGeometry:
        return None  # checked when it was written; an unusable one matches nothing


def _is_point(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )


def _plain(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
