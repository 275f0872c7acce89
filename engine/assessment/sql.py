"""The SQL of the assessment, in the two dialects we run on.

Everything is aggregated in the database.  Facts are first counted per unit
(``GROUP BY unit_code``); :func:`ancestors` then repeats each per-unit row
once for the unit itself and once for each of its ancestors — a ``UNION
ALL`` of at most four branches (the grid has four levels, each unit's parent
one level up), each an equality join on ``units.code`` — and the caller sums
per ancestor.  Medians need the values, so they are ranked per ancestor with
window functions (``ROW_NUMBER``/``COUNT`` over the partition) and the middle
one or two averaged.

Every join is an equality on an indexed column, so the plans stay sane on a
freshly loaded database whose planner statistics are missing or wrong (a
recursive CTE of ancestors, tried first, let PostgreSQL pick a nested loop of
findings × cases on a fresh load — hours, and all the server's memory).

"Missed by the grid" (:meth:`Dialect.hits`): a finding is found by the grid
when a case in the finding's unit or below, opened before the end of
``found_on`` (local day), has a top-level data field whose value equals the
finding's ``ref``, or has a ``location`` ``[lng, lat]`` within the match
radius of the finding's point.  Candidate cases are reached from each
finding through ``units.parent_code`` and ``cases.unit_code`` (both
indexed), and the JSON tests run on those candidates only.  Distances use the
local metres per degree stored with the finding (an equirectangular
approximation: well under a metre of error at the tens of metres that
matter here).  A finding with a shape is also found by a case whose geometry
intersects it: shapely decides that (:mod:`engine.assessment.overlaps`), and
its pairs arrive as the JSON parameter ``:geo_hits``, expanded here.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.grid.registry import LEVELS

__all__ = ["MAX_DEPTH", "Dialect", "ancestors", "descendants"]

MAX_DEPTH = len(LEVELS) - 1  # a unit's parent is always one level up or more


def ancestors(source: str, columns: str, depth: int = MAX_DEPTH) -> str:
    """Rows of *source* (which has ``unit_code``) once per ancestor-or-self, as ``anc``.

    *columns* are the columns of *source* to carry (``s.x, s.y``).
    """
    parts = [f"SELECT s.unit_code AS anc, {columns} FROM {source} s"]
    for k in range(1, depth + 1):
        joins = " ".join(
            ["JOIN units u1 ON u1.code = s.unit_code"]
            + [f"JOIN units u{i} ON u{i}.code = u{i - 1}.parent_code" for i in range(2, k + 1)]
        )
        parts.append(
            f"SELECT u{k}.parent_code AS anc, {columns} FROM {source} s {joins} "
            f"WHERE u{k}.parent_code IS NOT NULL"
        )
    return "\n    UNION ALL\n    ".join(parts)


def descendants(source: str, depth: int = MAX_DEPTH) -> str:
    """``(id, code)``: each row of *source* (``id``, ``unit_code``) with every unit at or
    below its unit, reached down ``units.parent_code``."""
    parts = [f"SELECT s.id, s.unit_code AS code FROM {source} s"]
    for k in range(1, depth + 1):
        joins = " ".join(
            ["JOIN units d1 ON d1.parent_code = s.unit_code"]
            + [f"JOIN units d{i} ON d{i}.parent_code = d{i - 1}.code" for i in range(2, k + 1)]
        )
        parts.append(f"SELECT s.id, d{k}.code FROM {source} s {joins}")
    return "\n    UNION ALL\n    ".join(parts)


@dataclass(frozen=True)
class Dialect:
    name: str

    @property
    def pg(self) -> bool:
        return self.name == "postgresql"

    def seconds(self, a: str, b: str) -> str:
        """Seconds from timestamp *a* to *b*, both truncated to the second (exact integers,
        the same on both backends); NULL unless both are set and b ≥ a."""
        diff = (
            f"EXTRACT(EPOCH FROM (date_trunc('second', {b}) - date_trunc('second', {a})))"
            if self.pg
            else f"(CAST(strftime('%s', {b}) AS INTEGER) - CAST(strftime('%s', {a}) AS INTEGER))"
        )
        return f"CASE WHEN {a} IS NOT NULL AND {b} IS NOT NULL AND {b} >= {a} THEN {diff} END"

    def ref_match(self, data: str, ref: str) -> str:
        """Some top-level field of the JSON document *data* equals the text *ref*."""
        if self.pg:
            return f"EXISTS (SELECT 1 FROM jsonb_each_text({data}) j WHERE j.value = {ref})"
        return f"EXISTS (SELECT 1 FROM json_each({data}) j WHERE j.atom = {ref})"

    def near(self, data: str, f: str) -> str:
        """The case's ``location`` is within ``sqrt(:r2)`` metres of finding *f*'s point."""
        if self.pg:
            is_point = f"jsonb_typeof({data}->'location') = 'array'"
            lng = f"({data}->'location'->>0)::float8"
            lat = f"({data}->'location'->>1)::float8"
        else:
            is_point = f"json_type({data}, '$.location') = 'array'"
            lng = f"json_extract({data}, '$.location[0]')"
            lat = f"json_extract({data}, '$.location[1]')"
        dx = f"(({lng} - {f}.lng) * {f}.m_per_deg_lng)"
        dy = f"(({lat} - {f}.lat) * {f}.m_per_deg_lat)"
        return f"({f}.lng IS NOT NULL AND {is_point} AND {dx} * {dx} + {dy} * {dy} <= :r2)"

    def has_shape(self, data: str) -> str:
        """The JSON document *data* may hold a shape: a GeoJSON object somewhere, or a
        ``location`` array (a cheap filter; :mod:`engine.assessment.overlaps` decides)."""
        if self.pg:
            return (
                f"(({data})::text LIKE '%\"coordinates\"%' "
                f"OR jsonb_typeof({data}->'location') = 'array')"
            )
        return f"({data} LIKE '%\"coordinates\"%' OR json_type({data}, '$.location') = 'array')"

    def geo_pairs(self) -> str:
        """``(finding_id, case_id)`` rows of the JSON text parameter ``:geo_hits``."""
        if self.pg:
            return (
                "SELECT (j.value->>0)::integer, j.value->>1 "
                "FROM jsonb_array_elements(CAST(:geo_hits AS jsonb)) j"
            )
        return (
            "SELECT CAST(json_extract(j.value, '$[0]') AS INTEGER), "
            "json_extract(j.value, '$[1]') FROM json_each(:geo_hits) j"
        )

    def hits(self, workflow: bool) -> str:
        """CTEs ending in ``hits(finding_id, case_id, how)``, over CTE ``f`` (the findings
        in scope: ``id, ref, unit_code, found_until, lng, lat, m_per_deg_lng/_lat``) and
        the parameter ``:geo_hits`` (:func:`engine.assessment.overlaps.geometry_hits`);
        ``how`` is ``ref``, ``distance`` or ``geometry``, one row per finding and case."""
        materialized = "MATERIALIZED " if self.pg else ""
        ref = self.ref_match("p.data", "f.ref")
        wf = "AND c.workflow = :workflow" if workflow else ""
        return f"""below(id, code) AS {materialized}(
    {descendants("f")}
),
pairs(finding_id, case_id, data) AS {materialized}(
    SELECT b.id, c.id, c.data
    FROM below b
    JOIN f ON f.id = b.id
    JOIN cases c ON c.unit_code = b.code
    WHERE c.opened_at < f.found_until {wf}
),
near(finding_id, case_id, how) AS (
    SELECT p.finding_id, p.case_id, CASE WHEN {ref} THEN 'ref' ELSE 'distance' END
    FROM pairs p JOIN f ON f.id = p.finding_id
    WHERE {ref} OR {self.near("p.data", "f")}
),
shaped(finding_id, case_id) AS (
    {self.geo_pairs()}
),
hits(finding_id, case_id, how) AS (
    SELECT finding_id, case_id, how FROM near
    UNION ALL
    SELECT s.finding_id, s.case_id, 'geometry' FROM shaped s
    WHERE NOT EXISTS (
        SELECT 1 FROM near n WHERE n.finding_id = s.finding_id AND n.case_id = s.case_id
    )
)"""


def dialect_for(name: str) -> Dialect:
    return Dialect(name)
