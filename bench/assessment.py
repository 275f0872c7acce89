"""The assessment report on a province-sized year, on SQLite and PostgreSQL.

Usage::

    python bench/assessment.py [--scale S] [--repeat R] [--postgres URL] [--keep DIR]

Generates one year (2025, Asia/Shanghai) of a province — at ``--scale 1``:
40 districts, 1,000 towns, 10,000 villages; about 520,000 patrol records
(villages weekly, towns monthly) with their ~530,000 obligation periods and
the missed ones; 50,000 farmland cases with their history, state entries and
overdue facts (stop, report and verification late in 10–15 % of cases); and
5,000 survey findings (some found by a case's location, some by reference,
the rest missed) — then times ``report assessment`` for the year, the whole
province rolled up (11,040 rows).

Rows are generated with a seeded RNG in Python and written in bulk, straight
in each backend's storage format: ``executemany`` on SQLite, ``COPY`` on
PostgreSQL.  The report then runs ``--repeat`` times before and after
``ANALYZE`` (a fresh bulk load has no planner statistics; PostgreSQL's
autovacuum would gather them within a minute, SQLite never does on its own),
with the time of each of its queries.  Nothing is asserted; the machine may
be shared and noisy, so read medians.  The two backends must give the same
numbers: the script checks the reports are equal.

SQLite runs on a file in a temporary folder (``--keep DIR`` keeps it there);
``--postgres`` loads a fresh schema ``bench_<random>`` (through
``search_path`` in the URL), dropped at the end unless ``--keep`` is given.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/assessment.py` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, Integer, select  # noqa: E402

from engine.assessment import AssessmentConfig, assess  # noqa: E402
from engine.assessment import report as report_module  # noqa: E402
from engine.cases.catalog import Catalog  # noqa: E402
from engine.clock import FixedClock  # noqa: E402
from engine.patrols.periods import Every, following, period_of  # noqa: E402
from engine.patrols.rules import parse_rules  # noqa: E402
from engine.patrols.survey import metres_per_degree  # noqa: E402
from engine.store.db import make_engine, normalize_url, upgrade  # noqa: E402
from engine.store.tables import metadata, workflow_versions  # noqa: E402

TZ = "Asia/Shanghai"
ZONE = ZoneInfo(TZ)
YEAR = 2025
T0 = datetime(YEAR, 1, 1, tzinfo=ZONE).astimezone(UTC)
T1 = datetime(YEAR + 1, 1, 1, tzinfo=ZONE).astimezone(UTC)
WORKFLOW = ROOT / "workflows" / "farmland_violation.yaml"
RULES = """\
patrols:
  - level: village
    every: week
    roles: [village.member, village.leader]
    remind: [1d]
    escalate: [{after: 0m, notify: [town.leader]}]
  - level: town
    every: month
    roles: [town.leader]
    escalate: [{after: 0m, notify: [district.office]}]
"""
BATCH = 50_000
H = 3600.0

# (from state, deadline hours, second rung after hours) of each step
STOP = ("discovered", 2.0, 2.0)
REPORT_STOPPED = ("stopped", 24.0, 12.0)
REPORT_FAILED = ("stop_failed", 2.0, 1.0)
VERIFY = ("reported", 24.0, 24.0)


# ---------------------------------------------------------------- writing rows


class Writer:
    """Bulk rows into one table, in the backend's own format, inside one transaction."""

    def __init__(self, conn: Any, pg: bool) -> None:
        self.conn = conn
        self.pg = pg
        self.counts: dict[str, int] = {}

    def write(self, table: str, rows: Iterable[Sequence[Any]]) -> None:
        """*rows* in the order of the table's columns in ``engine.store.tables`` (without an
        autoincrement ``id``)."""
        columns = [
            c.name
            for c in metadata.tables[table].columns
            if not (c.name == "id" and isinstance(c.type, Integer))
        ]
        for chunk in _chunks(rows, BATCH):
            assert len(chunk[0]) == len(columns), (table, columns, chunk[0])
            if self.pg:
                self._copy(table, columns, chunk)
            else:
                marks = ", ".join("?" * len(columns))
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
                self.conn.executemany(sql, [tuple(_sqlite(v) for v in r) for r in chunk])
            self.counts[table] = self.counts.get(table, 0) + len(chunk)

    def _copy(self, table: str, columns: Sequence[str], rows: list[Sequence[Any]]) -> None:
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with self.conn.cursor() as cur, cur.copy(sql) as copy:
            for row in rows:
                copy.write_row([_pg(v) for v in row])


def _sqlite(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return int(value)
    return value


def _pg(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


def _chunks(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    chunk: list[Sequence[Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ---------------------------------------------------------------- the province


@dataclass
class Province:
    scale: float
    seed: int = 2025
    districts: list[str] = field(default_factory=list)
    towns: list[tuple[str, str]] = field(default_factory=list)  # (code, district)
    villages: list[tuple[str, str, float, float]] = field(default_factory=list)  # code, town, xy
    # (case id, village, opened, lng, lat) of the generated cases, for the findings
    case_points: list[tuple[str, str, datetime, float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        n_villages = max(10, round(10_000 * self.scale))
        n_towns = max(1, n_villages // 10)
        n_districts = max(1, n_towns // 25)
        self.districts = [f"d{i:03d}" for i in range(n_districts)]
        self.towns = [
            (f"{self.districts[i % n_districts]}-t{i:04d}", self.districts[i % n_districts])
            for i in range(n_towns)
        ]
        rng = random.Random(self.seed)
        self.villages = []
        for i in range(n_villages):
            town = self.towns[i % n_towns][0]
            lng, lat = 104.0 + rng.random() * 6, 28.0 + rng.random() * 4  # a province's extent
            self.villages.append((f"{town}-v{i:05d}", town, lng, lat))

    def paths(self) -> dict[str, str]:
        out = {d: f"/{d}/" for d in self.districts}
        for t, d in self.towns:
            out[t] = f"{out[d]}{t}/"
        for v, t, _, _ in self.villages:
            out[v] = f"{out[t]}{v}/"
        return out


def load(engine: Engine, province: Province, seed: int) -> dict[str, float]:
    """Generate and write the year; returns seconds per phase."""
    upgrade(engine)
    clock = FixedClock(T0)
    definition = Catalog(engine, clock).register_file(WORKFLOW)
    with engine.connect() as c:
        definition_id = c.execute(
            select(workflow_versions.c.id).where(workflow_versions.c.version == definition.version)
        ).scalar_one()
    pg = engine.dialect.name == "postgresql"
    timings: dict[str, float] = {}
    rng = random.Random(seed)
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        w = Writer(raw, pg)

        def phase(name: str, work: Callable[[], None]) -> None:
            start = time.perf_counter()
            work()
            timings[name] = time.perf_counter() - start

        phase("grid", lambda: _grid(w, province))
        phase("cases", lambda: _cases(w, province, rng, definition_id))
        phase("patrols", lambda: _patrols(w, province, rng))
        phase("findings", lambda: _findings(w, province, rng))
        w_counts = dict(w.counts)
    timings.update({f"rows:{k}": float(v) for k, v in w_counts.items()})
    return timings


def _grid(w: Writer, p: Province) -> None:
    paths = p.paths()
    w.write("units", [(d, f"{d}区", "district", None, paths[d], 0, True) for d in p.districts])
    w.write("units", [(t, f"{t}镇", "town", d, paths[t], 1, True) for t, d in p.towns])
    w.write("units", [(v, f"{v}村", "village", t, paths[v], 2, True) for v, t, _, _ in p.villages])
    people = [
        (f"p-{u}", f"{u}网格员", None, None, None, True, "person")
        for u in [t for t, _ in p.towns] + [v for v, *_ in p.villages]
    ]
    w.write("people", people)
    roles = [(f"p-{t}", t, "leader", True) for t, _ in p.towns]
    roles += [(f"p-{v}", v, "member", True) for v, *_ in p.villages]
    w.write("person_roles", roles)
    rules = parse_rules(RULES, "bench", TZ).rules
    w.write(
        "patrol_rules",
        [
            (
                r.id,
                r.level,
                r.every.text,
                r.times,
                list(r.roles),
                [d.text for d in r.remind],
                [g.as_dict() for g in r.escalate],
                TZ,
                r.content_hash,
                "bench",
                True,
                T0,
            )
            for r in rules
        ],
    )


def _hours(rng: random.Random, on_time: float, deadline: float, late_max: float) -> float:
    """A step's duration: within the deadline with probability *on_time*, else late."""
    if rng.random() < on_time:
        return rng.uniform(0.1, deadline * 0.95)
    return rng.uniform(deadline * 1.05, late_max)


def _cases(w: Writer, p: Province, rng: random.Random, definition_id: int) -> None:
    n = max(50, round(50_000 * p.scale))
    span = (T1 - T0).total_seconds() - 5 * 86400
    cases_rows: list[tuple[Any, ...]] = []
    history_rows: list[tuple[Any, ...]] = []
    entries: list[tuple[Any, ...]] = []
    facts: list[tuple[Any, ...]] = []
    p.case_points = []
    timer = 0
    for i in range(n):
        village, _, vlng, vlat = p.villages[rng.randrange(len(p.villages))]
        case_id = f"C{i:07d}"
        actor = f"p-{village}"
        opened = T0 + timedelta(seconds=rng.random() * span)
        lng = vlng + rng.uniform(-0.01, 0.01)
        lat = vlat + rng.uniform(-0.01, 0.01)
        p.case_points.append((case_id, village, opened, lng, lat))
        stopped = rng.random() < 0.75
        t_stop = opened + timedelta(hours=_hours(rng, 0.85, 2, 30))
        report_step = REPORT_STOPPED if stopped else REPORT_FAILED
        t_report = t_stop + timedelta(
            hours=_hours(rng, 0.9, 24, 40) if stopped else _hours(rng, 0.85, 2, 6)
        )
        t_verify = t_report + timedelta(hours=_hours(rng, 0.85, 24, 80))
        dismissed = rng.random() < 0.3
        final = "dismissed" if dismissed else "town_handling"
        path = [
            ("create", None, "discovered", opened),
            ("stop" if stopped else "stop_fail", "discovered", report_step[0], t_stop),
            ("report", report_step[0], "reported", t_report),
            ("dismiss" if dismissed else "confirm", "reported", final, t_verify),
        ]
        for seq, (trigger, src, dst, at) in enumerate(path, start=1):
            history_rows.append(
                (
                    case_id,
                    seq,
                    at,
                    actor,
                    trigger,
                    src,
                    dst,
                    {},
                    definition_id,
                    "0" * 64,
                    f"{i:056d}{seq:08d}",
                )
            )
            entries.append((case_id, dst, at))
        for (state, hours, second), entered, left in (
            (STOP, opened, t_stop),
            (report_step, t_stop, t_report),
            (VERIFY, t_report, t_verify),
        ):
            deadline = entered + timedelta(hours=hours)
            if left <= deadline:
                continue
            for rung, due in (
                (None, deadline),
                (0, deadline),
                (1, deadline + timedelta(hours=second)),
            ):
                if due <= left:
                    timer += 1
                    level = 0 if rung is None else rung + 1
                    facts.append((case_id, village, state, deadline, rung, level, left, timer))
        data = {
            "address": f"{village} 第{i % 9 + 1}组",
            "land_type": "一般耕地",
            "source": "村级巡查",
            "location": [round(lng, 6), round(lat, 6)],
            "case_no": f"CN-{i:07d}",
        }
        cases_rows.append(
            (
                case_id,
                "farmland_violation",
                definition_id,
                final,
                village,
                data,
                4,
                0,
                opened,
                t_verify,
                t_verify if dismissed else None,
                None,
                "x",
                t_verify,
                actor,
            )
        )
    w.write(
        "cases",
        cases_rows,
    )
    w.write(
        "history",
        history_rows,
    )
    w.write("state_entries", entries)
    w.write(
        "overdue_facts",
        facts,
    )


def _patrols(w: Writer, p: Province, rng: random.Random) -> None:
    week, month = Every("week"), Every("month")
    weeks = [period_of(week, T0, TZ)]
    while weeks[-1].end < T1:
        weeks.append(following(week, weeks[-1], TZ))
    months = [period_of(month, T0, TZ)]
    while months[-1].end < T1:
        months.append(following(month, months[-1], TZ))
    units = [(v, "village-week", weeks, (0.12, 0.92)) for v, *_ in p.villages]
    units += [(t, "town-month", months, (0.10, 0.70)) for t, _ in p.towns]
    counter = iter(range(10**9))

    def generate() -> Iterator[tuple[str, tuple[Any, ...]]]:
        for unit, rule, periods, (none, one) in units:
            actor = f"p-{unit}"
            for period in periods:
                roll = rng.random()
                k = 0 if roll < none else 1 if roll < one else 2
                for _ in range(k):
                    span = (period.end - period.start).total_seconds() - 4 * 3600
                    start = period.start + timedelta(seconds=rng.random() * span)
                    end = start + timedelta(minutes=rng.randint(40, 180))
                    n = next(counter)
                    findings = "发现疑似违法占地" if n % 20 == 0 else None
                    yield (
                        "p",
                        (f"P{n:08d}", unit, actor, start, end, None, None, findings, [], [], end),
                    )
                closed = period.end <= T1
                status = ("met" if k else "missed") if closed else "open"
                yield (
                    "pp",
                    (
                        rule,
                        unit,
                        period.start,
                        period.end,
                        1,
                        k,
                        status,
                        period.end if closed else None,
                    ),
                )
                if closed and not k:
                    yield "pm", (rule, unit, period.start, period.end, 0, 1, 1, period.end, None)

    buffers: dict[str, list[tuple[Any, ...]]] = {"p": [], "pp": [], "pm": []}
    tables = {"p": "patrols", "pp": "patrol_periods", "pm": "patrol_missed"}

    def flush(kind: str) -> None:
        w.write(tables[kind], buffers[kind])
        buffers[kind] = []

    for kind, row in generate():
        buffers[kind].append(row)
        if len(buffers[kind]) >= BATCH:
            flush(kind)
    for kind in buffers:
        flush(kind)


def _findings(w: Writer, p: Province, rng: random.Random) -> None:
    n = max(20, round(5_000 * p.scale))
    points = p.case_points
    rows = []
    for i in range(n):
        roll = rng.random()
        case_id, village, opened, lng, lat = points[rng.randrange(len(points))]
        found_on = (opened + timedelta(days=rng.randint(1, 120))).astimezone(ZONE).date()
        ref = f"TB-{i:06d}"
        if roll < 0.40:  # near a case the grid opened earlier
            m_lng, m_lat = metres_per_degree(lat)
            lng += rng.uniform(-20, 20) / m_lng
            lat += rng.uniform(-20, 20) / m_lat
        elif roll < 0.55:  # the case carries the spot's reference
            ref = f"CN-{int(case_id[1:]):07d}"
            lng, lat = lng + 0.05, lat + 0.05
        else:  # somewhere else in the village: missed
            village, _, vlng, vlat = p.villages[rng.randrange(len(p.villages))]
            lng, lat = vlng + rng.uniform(-0.01, 0.01), vlat + rng.uniform(-0.01, 0.01)
            found_on = (T0 + timedelta(days=rng.randint(0, 364))).astimezone(ZONE).date()
        if found_on.year != YEAR:
            found_on = date(YEAR, 12, 31)
        m_lng, m_lat = metres_per_degree(lat)
        until = datetime.combine(found_on + timedelta(days=1), datetime.min.time(), ZONE)
        rows.append(
            (
                f"{ref}#{i}" if roll < 0.40 or roll >= 0.55 else ref,
                village,
                found_on,
                until.astimezone(UTC),
                100.0,
                lng,
                lat,
                m_lng,
                m_lat,
                None,
                "卫片图斑",
                "bench.csv",
                i + 2,
                T1,
            )
        )
    unique = list({r[0]: r for r in reversed(rows)}.values())[::-1]  # first row per ref
    w.write("survey_findings", unique)


# ---------------------------------------------------------------- timing the report


QUERIES = ("_units", "_cases", "_medians", "_overdue", "_patrols", "_findings")


@contextmanager
def timed_queries(into: dict[str, list[float]]) -> Iterator[None]:
    originals = {name: getattr(report_module, name) for name in QUERIES}

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                into.setdefault(name, []).append(time.perf_counter() - start)

        return timed

    for name, fn in originals.items():
        setattr(report_module, name, wrap(name, fn))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(report_module, name, fn)


def run_report(engine: Engine, repeat: int) -> tuple[list[float], dict[str, list[float]], Any]:
    walls: list[float] = []
    parts: dict[str, list[float]] = {}
    result = None
    with timed_queries(parts):
        for _ in range(repeat):
            start = time.perf_counter()
            result = assess(engine, date(YEAR, 1, 1), date(YEAR, 12, 31), AssessmentConfig(), TZ)
            walls.append(time.perf_counter() - start)
    return walls, parts, result


def analyze(engine: Engine) -> float:
    start = time.perf_counter()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - start


@dataclass
class Outcome:
    backend: str
    load: dict[str, float]
    before: tuple[list[float], dict[str, list[float]]]
    analyze_s: float
    after: tuple[list[float], dict[str, list[float]]]
    report: Any


def bench(engine: Engine, backend: str, province: Province, repeat: int) -> Outcome:
    print(f"[{backend}] generating …", flush=True)
    loaded = load(engine, province, seed=7)
    print(f"[{backend}] reporting …", flush=True)
    walls, parts, _ = run_report(engine, repeat)
    spent = analyze(engine)
    walls2, parts2, result = run_report(engine, repeat)
    return Outcome(backend, loaded, (walls, parts), spent, (walls2, parts2), result)


@contextmanager
def sqlite_engine(keep: str | None) -> Iterator[Engine]:
    with tempfile.TemporaryDirectory(prefix="gengbao-assess-") as folder:
        path = Path(keep or folder) / "assessment.db"
        path.unlink(missing_ok=True)
        engine = make_engine(f"sqlite:///{path}")
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def postgres_engine(base: str, keep: bool) -> Iterator[Engine]:
    schema = f"bench_{secrets.token_hex(5)}"
    admin = make_engine(base).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = normalize_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        if keep:
            print(f"[postgres] kept schema {schema}")
        else:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.engine.dispose()


def _median(values: Sequence[float]) -> str:
    if not values:
        return "—"
    spread = f" ({min(values):.2f}–{max(values):.2f})" if len(values) > 1 else ""
    return f"{statistics.median(values):.2f} s{spread}"


def show(outcomes: Sequence[Outcome]) -> None:
    print()
    first = outcomes[0]
    tables = [k[5:] for k in first.load if k.startswith("rows:")]
    print("rows written: " + ", ".join(f"{t} {int(first.load['rows:' + t]):,}" for t in tables))
    units = len(first.report.rows)
    print(f"report: {units:,} units (the whole province, rolled up), year {YEAR}")
    print()
    header = f"{'':<34}" + "".join(f"{o.backend:>26}" for o in outcomes)
    print(header)
    print("-" * len(header))

    def line(label: str, cells: Sequence[str]) -> None:
        print(f"{label:<34}" + "".join(f"{c:>26}" for c in cells))

    phases = ("grid", "cases", "patrols", "findings")
    for phase in phases:
        line(f"generate {phase}", [f"{o.load[phase]:.1f} s" for o in outcomes])
    line("generate, total", [f"{sum(o.load[p] for p in phases):.1f} s" for o in outcomes])
    line("report, fresh load", [_median(o.before[0]) for o in outcomes])
    line("ANALYZE", [f"{o.analyze_s:.1f} s" for o in outcomes])
    line("report, after ANALYZE", [_median(o.after[0]) for o in outcomes])
    for name in QUERIES:
        line(f"  {name.strip('_')}", [_median(o.after[1].get(name, [])) for o in outcomes])
    d = first.report.rows[0]
    print()
    print(
        f"first district {d.unit}: cases {d.cases}, stop on time {d.share('stop')}, "
        f"overdue {d.overdue}, patrols {d.patrols_done}/{d.patrols_required} "
        f"({d.patrol_rate}), missed patrols {d.missed_patrols}, findings {d.findings} "
        f"(missed {d.missed}), score {d.score}"
    )
    if len(outcomes) > 1:
        diffs = _differences(first.report.as_dicts(), outcomes[1].report.as_dicts())
        print(f"SQLite and PostgreSQL reports identical: {'yes' if not diffs else 'NO'}")
        for unit, key, a, b in diffs[:10]:
            print(f"  {unit} {key}: {a!r} ≠ {b!r}")


def _differences(
    a: list[dict[str, Any]], b: list[dict[str, Any]]
) -> list[tuple[str, str, Any, Any]]:
    out = []
    for ra, rb in zip(a, b, strict=True):
        for key in ra:
            if ra[key] != rb.get(key):
                out.append((ra["unit"], key, ra[key], rb.get(key)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="1 = 10,000 villages, 50,000 cases, ~520,000 patrols (default)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="report runs per phase (default 3)")
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL server")
    parser.add_argument(
        "--keep", metavar="DIR", help="keep the SQLite file in DIR (and the PostgreSQL schema)"
    )
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args(argv)
    province = Province(args.scale)
    print(
        f"province: {len(province.districts)} districts, {len(province.towns):,} towns, "
        f"{len(province.villages):,} villages; year {YEAR}; scale {args.scale:g}"
    )
    outcomes = []
    if not args.skip_sqlite:
        with sqlite_engine(args.keep) as engine:
            outcomes.append(bench(engine, "SQLite", province, args.repeat))
    if args.postgres:
        with postgres_engine(args.postgres, bool(args.keep)) as engine:
            outcomes.append(bench(engine, "PostgreSQL", Province(args.scale), args.repeat))
    if outcomes:
        show(outcomes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
