"""The assessment report (考评): one row per grid unit over a period, rolled up the grid.

A unit's row counts what happened in the unit and every unit below it (a
town's row includes its villages and their groups).  The period is local
calendar days ``date_from`` … ``date_to`` in the settings' time zone, and
each figure takes what belongs to it:

=========================  ====================================================
cases                      cases opened in the period
stop/report/verify         of those cases: a step is *due* once it is done or
 on time                   its deadline passed (an overdue fact, rung NULL, in
                           one of the step's ``from`` states); *on time* when
                           done with no such fact; the share is on time / due
median hours               median time from first entering a ``from`` state to
                           first entering a ``to`` state, over those cases
overdue, by state          overdue facts (a deadline passed) whose deadline
                           fell in the period, in total and per state
escalations                escalation rungs fired for deadlines in the period
patrols done               patrol records started in the period
patrols required/counted   over obligation periods *ending* in the period:
                           required patrols, and patrols that counted, each
                           period contributing at most its requirement
patrol rate (巡田率)        counted / required
missed patrols             missed-patrol facts of periods ending in the period
findings, missed           survey/satellite findings with ``found_on`` in the
                           period, and those the grid missed (see
                           :mod:`engine.assessment.sql`)
score                      base + Σ weight × component, every component shown
=========================  ====================================================

The report reads the database only (nothing is written), computes every
figure with SQL aggregation, and is the same each time it is run on the same
data with the same weights.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, bindparam, select, text

from engine.assessment.config import MEASURES, AssessmentConfig
from engine.assessment.sql import Dialect, ancestors
from engine.errors import InvalidDateRange, UnknownUnit
from engine.grid import registry as grid
from engine.grid.visibility import ADMIN, Viewer, visible
from engine.patrols.ledger import day_bounds
from engine.store import connection
from engine.store.db import read_only
from engine.store.tables import UTCDateTime, units

__all__ = ["LEVEL_TITLES", "Report", "UnitRow", "assess"]

LEVEL_TITLES = {"district": "区", "town": "镇街", "village": "村社区", "group": "组社"}


@dataclass
class UnitRow:
    unit: str
    name: str
    level: str
    depth: int
    cases: int = 0
    on_time: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MEASURES, 0))
    due: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MEASURES, 0))
    median_hours: dict[str, float | None] = field(
        default_factory=lambda: dict.fromkeys(MEASURES, None)
    )
    overdue_by_state: dict[str, int] = field(default_factory=dict)
    escalations: int = 0
    patrols_done: int = 0
    patrols_required: int = 0
    patrols_counted: int = 0
    missed_patrols: int = 0
    findings: int = 0
    missed: int = 0
    supervisions: int = 0  # supervision notices (督办) received on its cases and below
    components: dict[str, dict[str, float | None]] = field(default_factory=dict)
    score: float = 0.0

    @property
    def overdue(self) -> int:
        return sum(self.overdue_by_state.values())

    def share(self, measure: str) -> float | None:
        due = self.due[measure]
        return round(self.on_time[measure] / due, 4) if due else None

    @property
    def patrol_rate(self) -> float | None:
        if not self.patrols_required:
            return None
        return round(self.patrols_counted / self.patrols_required, 4)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "unit": self.unit,
            "name": self.name,
            "level": self.level,
            "cases": self.cases,
        }
        for m in MEASURES:
            out[f"{m}_on_time"] = self.share(m)
            out[f"{m}_on_time_count"] = self.on_time[m]
            out[f"{m}_due"] = self.due[m]
            out[f"median_{m}_hours"] = self.median_hours[m]
        out.update(
            {
                "overdue": self.overdue,
                "overdue_by_state": dict(sorted(self.overdue_by_state.items())),
                "escalations": self.escalations,
                "patrols_done": self.patrols_done,
                "patrols_required": self.patrols_required,
                "patrols_counted": self.patrols_counted,
                "patrol_rate": self.patrol_rate,
                "missed_patrols": self.missed_patrols,
                "findings": self.findings,
                "missed": self.missed,
                "supervisions": self.supervisions,
                "score": self.score,
                "components": self.components,
            }
        )
        return out


@dataclass(frozen=True)
class Report:
    date_from: dt.date
    date_to: dt.date
    unit: str | None
    config: AssessmentConfig
    rows: list[UnitRow]
    level: str | None = None

    def as_dicts(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.rows]


def assess(
    engine: Engine,
    date_from: dt.date,
    date_to: dt.date,
    config: AssessmentConfig,
    timezone: str,
    *,
    unit: str | None = None,
    level: str | None = None,
    viewer: Viewer | str = ADMIN,
) -> Report:
    """Compute the report; read-only, one connection (a consistent snapshot on PostgreSQL).
    *viewer* gets the rows of the units it sees only (each row still counts everything
    below its unit, all of which the viewer sees too); a *unit* it does not see is
    UnknownUnit."""
    if date_to < date_from:
        raise InvalidDateRange(date_from, date_to)
    t0, t1 = day_bounds(date_from, date_to, timezone)
    assert t0 is not None and t1 is not None
    dialect = Dialect(engine.dialect.name)
    params: dict[str, Any] = {
        "t0": t0,
        "t1": t1,
        "d0": date_from,
        "d1": date_to,
        "r2": config.match_radius_m**2,
        "workflow": config.workflow,
    }
    for name, m in config.measures.items():
        params[f"{name}_from"] = list(m.start)
        params[f"{name}_to"] = list(m.end)
    with connection(read_only(engine)) as conn:
        if dialect.pg:
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            # The planner's cost estimates for these joins pass jit_above_cost while the
            # queries run in well under a second: compiling them would cost more than it saves.
            conn.exec_driver_sql("SET LOCAL jit = off")
        rows = _units(conn, unit, level, viewer)
        by_code = {r.unit: r for r in rows}
        _cases(conn, dialect, config, params, by_code)
        _medians(conn, dialect, config, params, by_code)
        _overdue(conn, params, by_code)
        _patrols(conn, params, by_code)
        _findings(conn, dialect, config, params, by_code)
        _supervisions(conn, params, by_code)
    for row in rows:
        _score(row, config)
    return Report(date_from, date_to, unit, config, rows, level)


# ---------------------------------------------------------------- queries


def _run(conn: Connection, sql: str, params: dict[str, Any]) -> sa.CursorResult[Any]:
    stmt = text(sql)
    binds: list[sa.BindParameter[Any]] = [
        bindparam("t0", type_=UTCDateTime),
        bindparam("t1", type_=UTCDateTime),
        bindparam("d0", type_=sa.Date()),
        bindparam("d1", type_=sa.Date()),
    ]
    binds += [
        bindparam(name, expanding=True)
        for name in params
        if name.endswith(("_from", "_to")) and f":{name}" in sql
    ]
    used = {b.key: b for b in binds if f":{b.key}" in sql}
    stmt = stmt.bindparams(*used.values())
    return conn.execute(stmt, {k: v for k, v in params.items() if f":{k}" in sql})


def _tuples(result: sa.CursorResult[Any]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in result]


def _units(
    conn: Connection, unit: str | None, level: str | None, viewer: Viewer | str = ADMIN
) -> list[UnitRow]:
    query = (
        select(units.c.code, units.c.name, units.c.level, units.c.depth)
        .where(units.c.active.is_(True), visible(viewer, units.c.path))
        .order_by(units.c.path)
    )
    if unit is not None:
        seen = conn.execute(
            select(units.c.path).where(units.c.code == unit, visible(viewer, units.c.path))
        ).scalar_one_or_none()
        if seen is None:
            raise UnknownUnit(unit)
        query = query.where(grid.in_subtree(units.c.path, str(seen)))
    if level is not None:
        query = query.where(units.c.level == level)
    return [UnitRow(r.code, r.name, r.level, r.depth) for r in conn.execute(query)]


def _case_ctes(dialect: Dialect, config: AssessmentConfig) -> str:
    wf = "AND workflow = :workflow" if config.workflow else ""
    firsts, lates, flags = [], [], []
    for m in config.measures:
        firsts.append(
            f"MIN(CASE WHEN se.state IN :{m}_from THEN se.first_entered_at END) AS {m}_a, "
            f"MIN(CASE WHEN se.state IN :{m}_to THEN se.first_entered_at END) AS {m}_b"
        )
        lates.append(f"MAX(CASE WHEN o.state IN :{m}_from THEN 1 ELSE 0 END) AS {m}_late")
        flags.append(
            f"CASE WHEN s.{m}_b IS NOT NULL AND COALESCE(l.{m}_late, 0) = 0 "
            f"THEN 1 ELSE 0 END AS {m}_ok, "
            f"CASE WHEN s.{m}_b IS NOT NULL OR COALESCE(l.{m}_late, 0) = 1 "
            f"THEN 1 ELSE 0 END AS {m}_due, "
            f"{dialect.seconds(f's.{m}_a', f's.{m}_b')} AS {m}_s"
        )
    return f"""WITH c AS (
    SELECT id, unit_code FROM cases WHERE opened_at >= :t0 AND opened_at < :t1 {wf}
),
steps AS (
    SELECT c.id, c.unit_code, {", ".join(firsts)}
    FROM c LEFT JOIN state_entries se ON se.case_id = c.id
    GROUP BY c.id, c.unit_code
),
late AS (
    SELECT o.case_id, {", ".join(lates)}
    FROM overdue_facts o JOIN c ON c.id = o.case_id
    WHERE o.rung IS NULL
    GROUP BY o.case_id
),
per_case AS (
    SELECT s.unit_code, {", ".join(flags)}
    FROM steps s LEFT JOIN late l ON l.case_id = s.id
)"""


def _rollup(ctes: str, per_unit: str, columns: Sequence[str]) -> str:
    """*ctes* (``WITH …`` or empty) plus ``x`` = *per_unit* (one row per unit_code with
    *columns*), summed per unit-or-ancestor: ``SELECT unit, SUM(col)…``."""
    head = f"{ctes},\n" if ctes else "WITH "
    carried = ", ".join(f"s.{c}" for c in columns)
    sums = ", ".join(f"SUM(r.{c}) AS {c}" for c in columns)
    return f"""{head}x AS (
    {per_unit}
)
SELECT r.anc AS unit, {sums}
FROM (
    {ancestors("x", carried)}
) r
GROUP BY r.anc"""


def _cases(
    conn: Connection,
    dialect: Dialect,
    config: AssessmentConfig,
    params: dict[str, Any],
    rows: dict[str, UnitRow],
) -> None:
    columns = ["n", *(f"{m}_{k}" for m in config.measures for k in ("ok", "due"))]
    sums = ", ".join(f"SUM({c}) AS {c}" for c in columns[1:])
    per_unit = f"SELECT unit_code, COUNT(*) AS n, {sums} FROM per_case GROUP BY unit_code"
    sql = _rollup(_case_ctes(dialect, config), per_unit, columns)
    for r in _run(conn, sql, params).mappings():
        row = rows.get(r["unit"])
        if row is None:
            continue
        row.cases = int(r["n"])
        for m in config.measures:
            row.on_time[m] = int(r[f"{m}_ok"])
            row.due[m] = int(r[f"{m}_due"])


def _medians(
    conn: Connection,
    dialect: Dialect,
    config: AssessmentConfig,
    params: dict[str, Any],
    rows: dict[str, UnitRow],
) -> None:
    values = "\n    UNION ALL\n    ".join(
        f"SELECT unit_code, '{m}' AS m, {m}_s AS v FROM per_case WHERE {m}_s IS NOT NULL"
        for m in config.measures
    )
    sql = (
        _case_ctes(dialect, config)
        + f""",
mv AS (
    {values}
),
vals AS (
    {ancestors("mv", "s.m, s.v")}
),
ranked AS (
    SELECT anc, m, v,
           ROW_NUMBER() OVER (PARTITION BY anc, m ORDER BY v) AS rn,
           COUNT(*) OVER (PARTITION BY anc, m) AS n
    FROM vals
)
SELECT anc, m, AVG(v) AS median FROM ranked
WHERE rn = (n + 1) / 2 OR rn = (n + 2) / 2
GROUP BY anc, m"""
    )
    for unit, measure, median in _tuples(_run(conn, sql, params)):
        row = rows.get(unit)
        if row is not None:
            row.median_hours[measure] = round(float(median) / 3600, 2)


def _overdue(conn: Connection, params: dict[str, Any], rows: dict[str, UnitRow]) -> None:
    sql = f"""WITH x AS (
    SELECT unit_code, state,
           SUM(CASE WHEN rung IS NULL THEN 1 ELSE 0 END) AS overdue,
           SUM(CASE WHEN rung IS NULL THEN 0 ELSE 1 END) AS escalations
    FROM overdue_facts WHERE deadline_at >= :t0 AND deadline_at < :t1
    GROUP BY unit_code, state
)
SELECT r.anc, r.state, SUM(r.overdue), SUM(r.escalations)
FROM (
    {ancestors("x", "s.state, s.overdue, s.escalations")}
) r
GROUP BY r.anc, r.state"""
    for unit, state, overdue, escalations in _tuples(_run(conn, sql, params)):
        row = rows.get(unit)
        if row is None:
            continue
        if overdue:
            row.overdue_by_state[state] = int(overdue)
        row.escalations += int(escalations)


def _patrols(conn: Connection, params: dict[str, Any], rows: dict[str, UnitRow]) -> None:
    done = """SELECT unit_code, COUNT(*) AS n FROM patrols
    WHERE started_at >= :t0 AND started_at < :t1 GROUP BY unit_code"""
    periods = """SELECT unit_code, SUM(required) AS required,
           SUM(CASE WHEN done < required THEN done ELSE required END) AS counted
    FROM patrol_periods
    WHERE status <> 'void' AND period_end > :t0 AND period_end <= :t1
    GROUP BY unit_code"""
    missed = """SELECT unit_code, COUNT(*) AS n FROM patrol_missed
    WHERE period_end > :t0 AND period_end <= :t1 GROUP BY unit_code"""
    for per_unit, columns, apply in (
        (done, ["n"], _set("patrols_done")),
        (periods, ["required", "counted"], _set("patrols_required", "patrols_counted")),
        (missed, ["n"], _set("missed_patrols")),
    ):
        for unit, *values in _tuples(_run(conn, _rollup("", per_unit, columns), params)):
            row = rows.get(unit)
            if row is not None:
                apply(row, values)


def _supervisions(conn: Connection, params: dict[str, Any], rows: dict[str, UnitRow]) -> None:
    """Supervision notices issued in the period, on each unit's cases and below (no
    weight of its own: the score is unchanged; an unanswered one's overdue facts count
    as overdue facts do)."""
    issued = """SELECT unit_code, COUNT(*) AS n FROM supervisions
    WHERE issued_at >= :t0 AND issued_at < :t1 GROUP BY unit_code"""
    for unit, n in _tuples(_run(conn, _rollup("", issued, ["n"]), params)):
        row = rows.get(unit)
        if row is not None:
            row.supervisions = int(n or 0)


def _set(*names: str) -> Any:
    def apply(row: UnitRow, values: Sequence[Any]) -> None:
        for name, value in zip(names, values, strict=True):
            setattr(row, name, int(value or 0))

    return apply


def _findings(
    conn: Connection,
    dialect: Dialect,
    config: AssessmentConfig,
    params: dict[str, Any],
    rows: dict[str, UnitRow],
) -> None:
    # shapely (and numpy, whose threads would miss the CLI's blocked signals) loads
    # when a report runs, not when the App is built
    from engine.assessment.overlaps import geometry_hits

    params = {
        **params,
        "geo_hits": geometry_hits(conn, dialect, params["d0"], params["d1"], config.workflow),
    }
    ctes = f"""WITH f AS (
    SELECT id, ref, unit_code, found_until, lng, lat, m_per_deg_lng, m_per_deg_lat
    FROM survey_findings WHERE found_on >= :d0 AND found_on <= :d1
),
{dialect.hits(config.workflow is not None)},
found AS (SELECT DISTINCT finding_id FROM hits)"""
    per_unit = """SELECT f.unit_code, COUNT(*) AS n,
           SUM(CASE WHEN found.finding_id IS NULL THEN 1 ELSE 0 END) AS missed
    FROM f LEFT JOIN found ON found.finding_id = f.id
    GROUP BY f.unit_code"""
    for unit, n, missed in _tuples(_run(conn, _rollup(ctes, per_unit, ["n", "missed"]), params)):
        row = rows.get(unit)
        if row is not None:
            row.findings, row.missed = int(n), int(missed or 0)


# ---------------------------------------------------------------- score


def _score(row: UnitRow, config: AssessmentConfig) -> None:
    late = {m: (1 - s) if (s := row.share(m)) is not None else None for m in MEASURES}
    rate = row.patrol_rate
    values: dict[str, float | None] = {
        "missed_violation": row.missed,
        "missed_patrol": row.missed_patrols,
        "overdue": row.overdue,
        "escalation": row.escalations,
        "stop_late_share": late["stop"],
        "report_late_share": late["report"],
        "verify_late_share": late["verify"],
        "patrol_shortfall": (1 - rate) if rate is not None else None,
    }
    total = config.base
    components: dict[str, dict[str, float | None]] = {}
    for name, value in values.items():
        weight = config.weights[name]
        points = round(weight * value, 4) if value is not None else 0.0
        total += points
        shown = round(value, 4) if isinstance(value, float) else value
        components[name] = {"value": shown, "weight": weight, "points": points}
    row.components = components
    row.score = round(total, 2)
