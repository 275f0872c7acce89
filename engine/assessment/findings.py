"""Survey findings one by one, with the case that found each (or "missed by the grid")."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Date, Engine, bindparam, text

from engine.assessment.sql import Dialect
from engine.grid import registry as grid
from engine.store import connection
from engine.store.db import read_only

__all__ = ["list_findings"]


def list_findings(
    engine: Engine,
    date_from: dt.date | None,
    date_to: dt.date | None,
    *,
    radius_m: float,
    unit: str | None = None,
    workflow: str | None = None,
    missed_only: bool = False,
) -> list[dict[str, Any]]:
    dialect = Dialect(engine.dialect.name)
    where = ["1 = 1"]
    params: dict[str, Any] = {"r2": radius_m**2}
    binds = []
    if date_from is not None:
        where.append("found_on >= :d0")
        params["d0"] = date_from
        binds.append(bindparam("d0", type_=Date()))
    if date_to is not None:
        where.append("found_on <= :d1")
        params["d1"] = date_to
        binds.append(bindparam("d1", type_=Date()))
    if workflow is not None:
        params["workflow"] = workflow
    sql = f"""WITH f AS (
    SELECT id, ref, unit_code, found_on, found_until, area_m2, lng, lat,
           m_per_deg_lng, m_per_deg_lat, note, source, geometry
    FROM survey_findings WHERE {" AND ".join(where)}
),
{dialect.hits(workflow is not None)}
SELECT f.id, f.ref, f.unit_code, u.path, f.found_on, f.area_m2, f.lng, f.lat, f.note,
       f.source, f.geometry, h.case_id, h.how
FROM f JOIN units u ON u.code = f.unit_code
LEFT JOIN hits h ON h.finding_id = f.id
ORDER BY f.found_on, f.ref, h.how DESC, h.case_id"""
    from engine.assessment.overlaps import geometry_hits  # shapely loads when it is needed

    out: dict[int, dict[str, Any]] = {}
    with connection(read_only(engine)) as conn:
        prefix = grid.subtree_prefix(conn, unit) if unit is not None else None
        params["geo_hits"] = geometry_hits(conn, dialect, date_from, date_to, workflow)
        for r in conn.execute(text(sql).bindparams(*binds), params):
            if prefix is not None and not r.path.startswith(prefix):
                continue
            item = out.setdefault(
                r.id,
                {
                    "ref": r.ref,
                    "unit": r.unit_code,
                    "found_on": str(r.found_on),
                    "area_m2": r.area_m2,
                    "lng": r.lng,
                    "lat": r.lat,
                    "geometry": _plain(r.geometry),
                    "note": r.note,
                    "source": r.source,
                    "missed": True,
                    "found_by": [],
                },
            )
            if r.case_id is not None:
                item["missed"] = False
                item["found_by"].append({"case": r.case_id, "how": r.how})
    items = list(out.values())
    return [i for i in items if i["missed"]] if missed_only else items


def _plain(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
