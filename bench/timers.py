"""Timer sweep cost and throughput against the number of pending timers, and the loop's lateness.

Usage::

    python bench/timers.py [--pending 10000,100000,1000000] [--due 1000] [--repeat 3]
                           [--cases 1000] [--interval 5] [--loop-timers 200] [--spread 4]
                           [--postgres URL] [--pg-pending SIZES]

For each pending size P, a fresh database (SQLite: a WAL file copied from a
template; PostgreSQL: a fresh schema ``benchtimers_<random>``) is migrated with
:func:`engine.store.db.upgrade`, gets the demo grid and the farmland workflow through
an :class:`~engine.app.App`, and ``--cases`` real cases made by the case service
(each writes its own 6 timers).  Then P pending timers due 30 days to a year
ahead are bulk-inserted (one ``INSERT ... SELECT`` over a recursive CTE on
SQLite, ``generate_series`` on PostgreSQL), spread over those cases, and
``--due`` D rows due now (half ``deadline``, which writes an overdue fact;
half ``reminder``, which queues a notification; state and revision those of
their case, so they really fire).

Measured, per backend and P:

* fire: wall time of ``app.timers.run_due(now)`` firing the D due rows, median
  of ``--repeat`` runs (between runs the same rows are re-armed: status back to
  pending, their overdue facts and notifications deleted); fired timers/s and
  µs per fired timer; and the ratio of that time at the largest P to the
  smallest (≈ 1.0 means the cost follows the due rows, not the pending ones).
  All sizes of a backend are loaded side by side and their runs interleaved
  (order alternating), so drift on a shared machine hits every size alike; 20
  warm-up timers fire first in each database (compiled workflow, statement
  caches).  The SQL statements of the first fire run are counted with a
  ``before_cursor_execute`` listener (an ``executemany`` is one statement; BEGIN
  and COMMIT are not counted) and divided by D;
* raw (SQLite): the same D rows fired by a bare ``sqlite3`` loop doing the same
  logical writes per timer — claim (a conditional UPDATE), the overdue fact or
  the notification row, the fired mark — one statement each, a transaction
  per 200 rows, on the same database with the same pragmas; interleaved with
  the engine's runs.  Reported: its timers/s and the engine's ÷ raw's;
* idle: wall time of a sweep that finds nothing due;
* the query plan of the claim query, captured from the sweep itself and run
  through ``EXPLAIN`` with its bound parameters and "now" set to the fire time
  (SQLite ``EXPLAIN QUERY PLAN``; PostgreSQL ``EXPLAIN (ANALYZE, BUFFERS)`` in a
  transaction rolled back at once): it must read the partial index
  ``ix_timers_pending_due``, and on SQLite need no temporary B-tree to sort;
* loop lateness (at the smallest P): a real :class:`SweepLoop` thread on a clock
  that runs in real time (its epoch just after the fire runs' instants, so the
  cases' own timers stay in the future), first the old loop (``follow_due=False``:
  a sweep every ``--interval`` s, no wake-ups), then the loop that sleeps until
  the next due time and wakes on commits, both in the same run.  Once the loop
  has started and planned its sleep, ``--loop-timers`` timers due at spread
  instants 0.2 to ``--spread`` s ahead are inserted in one transaction of this
  process.  Lateness = fired_at − due (fired_at: the instant of the sweep that
  fired it) and commit − due (when the batch committed), p50 / p99; and the
  sweeps the loop ran.

"pending P" is the number of pending timers not due, the cases' own included
(6 per case), so the bulk insert adds P minus those.  SQLite runs without
``ANALYZE`` (the engine never runs it); PostgreSQL gets
``VACUUM ANALYZE timers`` after the bulk load (autovacuum would do the same
shortly after such a load).  Nothing here asserts a speed: the machine may be
shared and noisy, so read medians and ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any, Protocol

from sqlalchemy import Engine, delete, event, func, insert, select, text, update

from engine.app import App
from engine.clock import FixedClock
from engine.grid.registry import load_grid
from engine.settings import Settings
from engine.store.db import make_engine, normalize_url, upgrade
from engine.store.tables import notifications, overdue_facts, timers
from engine.timers import Fired, SweepLoop, TimerService

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/timers.py` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

from bench.figures import Figure, record  # noqa: E402
from tests.support.farmland import CASE_DATA, GRID_FILE, REPORTER, UNIT, WORKFLOW_FILE  # noqa: E402

T0 = datetime(2026, 9, 18, 2, 0, tzinfo=UTC)  # Friday 10:00 in Shanghai: cases open here
IDLE_AT = T0 + timedelta(seconds=30)  # nothing is due yet
WARMUP_AT = T0 + timedelta(seconds=50)  # a few warm-up timers (caches, compiled workflow)
WARMUP = 20
DUE_FROM = T0 + timedelta(minutes=1)  # the D due rows: spread over 8 minutes ...
DUE_SPAN = timedelta(minutes=8)
FIRE_AT = T0 + timedelta(minutes=10)  # ... all due at this sweep
WINDOW_FROM = FIRE_AT + timedelta(minutes=1)  # the real loops' clocks start here
FAR_FROM = T0 + timedelta(days=30)  # the P pending rows: 30 days to ~1 year ahead
FAR_SPAN_S = 335 * 86_400
INDEX = "ix_timers_pending_due"
IDLE_SWEEPS = 20
SEED = 20260918


# ---------------------------------------------------------------- small helpers


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The *q* quantile (0..1) by linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def sqlite_text(at: datetime) -> str:
    """*at* as SQLAlchemy stores a UTC datetime in SQLite (naive, microseconds)."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def settings_for(url: str) -> Settings:
    return Settings(
        database_url=url,
        workflows_dir=ROOT / "workflows",
        source=ROOT / "config" / "gengbao.yaml",  # calendars/ and templates/ beside it
    )


def open_app(url: str, clock: FixedClock) -> App:
    return App(settings_for(url), clock, migrate=False)


def prepare(url: str, n_cases: int) -> float:
    """Migrate, load grid and workflow, open *n_cases* cases; returns the seconds spent."""
    started = perf_counter()
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    app = open_app(url, FixedClock(T0))
    try:
        load_grid(app.engine, GRID_FILE)
        workflow = app.catalog.register_file(WORKFLOW_FILE).workflow
        for _ in range(n_cases):
            app.cases.create_case(workflow, UNIT, REPORTER, CASE_DATA)
    finally:
        app.close()
    return perf_counter() - started


# ---------------------------------------------------------------- databases


class Target(Protocol):
    """Where the runs go: hands out fresh prepared databases, one per pending size."""

    name: str

    def fresh(self) -> AbstractContextManager[str]:
        """A migrated database with the grid, the workflow and the cases (its URL)."""
        ...


class SqliteTarget:
    name = "sqlite"

    def __init__(self, folder: Path, n_cases: int) -> None:
        self.folder = folder
        self.template = folder / "template.db"
        seconds = prepare(f"sqlite:///{self.template}", n_cases)
        log(f"sqlite: template with {n_cases} cases built in {seconds:.1f} s")
        self._n = 0

    @contextmanager
    def fresh(self) -> Iterator[str]:
        self._n += 1
        path = self.folder / f"run{self._n}.db"
        shutil.copyfile(self.template, path)
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)


class PostgresTarget:
    name = "postgres"

    def __init__(self, base: str, n_cases: int) -> None:
        self.base = base
        self.n_cases = n_cases
        self.admin = make_engine(base).execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def fresh(self) -> Iterator[str]:
        schema = f"benchtimers_{secrets.token_hex(5)}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        try:
            url = normalize_url(self.base).update_query_dict({"options": f"-csearch_path={schema}"})
            rendered = url.render_as_string(hide_password=False)
            seconds = prepare(rendered, self.n_cases)
            log(f"postgres: schema {schema} with {self.n_cases} cases built in {seconds:.1f} s")
            yield rendered
        finally:
            with self.admin.connect() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    def close(self) -> None:
        self.admin.engine.dispose()


# ---------------------------------------------------------------- loading timers

CASES_NUMBERED = "SELECT id, state, revision, row_number() OVER (ORDER BY id) - 1 AS k FROM cases"
TIMER_COLUMNS = (
    "case_id, state, case_revision, kind, rung, deadline_at, due_at, repeat_seconds,"
    " status, created_at"
)

SQLITE_BULK = f"""
WITH RECURSIVE cnt(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM cnt WHERE n + 1 < :count),
cs AS MATERIALIZED ({CASES_NUMBERED}),
t AS (SELECT cnt.n AS n, cs.id AS case_id, cs.state AS state, cs.revision AS rev,
             strftime('%Y-%m-%d %H:%M:%S', :far, '+' || (cnt.n * :step) || ' seconds')
                 || '.000000' AS due
      FROM cnt JOIN cs ON cs.k = cnt.n % :ncases)
INSERT INTO timers ({TIMER_COLUMNS})
SELECT case_id, state, rev,
       CASE n % 3 WHEN 0 THEN 'deadline' WHEN 1 THEN 'reminder' ELSE 'escalation' END,
       CASE n % 3 WHEN 2 THEN 0 END,
       due, due, NULL, 'pending', :created
FROM t
"""

POSTGRES_BULK = f"""
WITH cs AS ({CASES_NUMBERED}),
t AS (SELECT g.n AS n, cs.id AS case_id, cs.state AS state, cs.revision AS rev,
             CAST(:far AS timestamptz) + make_interval(secs => g.n * :step) AS due
      FROM generate_series(0, :count - 1) AS g(n) JOIN cs ON cs.k = mod(g.n, :ncases))
INSERT INTO timers ({TIMER_COLUMNS})
SELECT case_id, state, rev,
       CASE mod(n, 3) WHEN 0 THEN 'deadline' WHEN 1 THEN 'reminder' ELSE 'escalation' END,
       CASE mod(n, 3) WHEN 2 THEN 0 END,
       due, due, NULL, 'pending', CAST(:created AS timestamptz)
FROM t
"""


def count_pending(engine: Engine) -> int:
    with engine.connect() as conn:
        n: int = conn.execute(
            select(func.count()).select_from(timers).where(timers.c.status == "pending")
        ).scalar_one()
    return n


def bulk_pending(engine: Engine, count: int) -> None:
    """Insert *count* pending timers far in the future, spread over the cases."""
    if count <= 0:
        return
    step = max(1, FAR_SPAN_S // count)
    pg = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        ncases: int = conn.execute(select(func.count()).select_from(text("cases"))).scalar_one()
        if pg:
            conn.execute(
                text(POSTGRES_BULK),
                {"count": count, "far": FAR_FROM, "step": step, "ncases": ncases, "created": T0},
            )
        else:
            conn.execute(
                text(SQLITE_BULK),
                {
                    "count": count,
                    "far": FAR_FROM.strftime("%Y-%m-%d %H:%M:%S"),
                    "step": step,
                    "ncases": ncases,
                    "created": sqlite_text(T0),
                },
            )


def insert_due(
    engine: Engine, n: int, first: datetime, spacing: Callable[[int], float]
) -> list[int]:
    """*n* timers due at ``first + spacing(i)`` seconds: half deadlines, half reminders."""
    with engine.begin() as conn:
        live = conn.execute(
            text("SELECT id, state, revision FROM cases WHERE closed_at IS NULL ORDER BY id")
        ).all()
        rows: list[dict[str, Any]] = []
        for i in range(n):
            case = live[i % len(live)]
            due = first + timedelta(seconds=spacing(i))
            kind = "deadline" if i % 2 == 0 else "reminder"
            rows.append(
                {
                    "case_id": case.id,
                    "state": case.state,
                    "case_revision": case.revision,
                    "kind": kind,
                    "rung": None,
                    "deadline_at": due if kind == "deadline" else due + timedelta(hours=1),
                    "due_at": due,
                    "repeat_seconds": None,  # no follow-up reminder: every run fires the same rows
                    "status": "pending",
                    "created_at": T0,
                }
            )
        result = conn.execute(
            insert(timers).returning(timers.c.id, sort_by_parameter_order=True), rows
        )
        return [row.id for row in result]


def rearm(engine: Engine, ids: Sequence[int]) -> None:
    """Put fired rows back to pending and delete what firing them wrote."""
    keys = [f"timer:{i}" for i in ids]
    with engine.begin() as conn:
        conn.execute(delete(overdue_facts).where(overdue_facts.c.timer_id.in_(ids)))
        conn.execute(delete(notifications).where(notifications.c.dedupe_key.in_(keys)))
        conn.execute(
            update(timers)
            .where(timers.c.id.in_(ids))
            .values(status="pending", fired_at=None, fired_by=None)
        )


def settle(engine: Engine) -> None:
    """After a bulk load: checkpoint the WAL (SQLite) or VACUUM ANALYZE (PostgreSQL)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE timers")
        return
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        raw.close()


# ---------------------------------------------------------------- the claim query's plan


@dataclass
class Captured:
    statement: str = ""
    parameters: Any = None

    def listen(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        flat = " ".join(statement.split())
        claim = flat.startswith("SELECT") and "FROM timers" in flat and "LIMIT" in flat
        if claim and not self.statement:
            self.statement, self.parameters = statement, parameters


def at_fire_time(parameters: Any) -> Any:
    """The claim's parameters with the idle sweep's "now" replaced by FIRE_AT."""
    swap: dict[Any, Any] = {IDLE_AT: FIRE_AT, sqlite_text(IDLE_AT): sqlite_text(FIRE_AT)}

    def one(value: Any) -> Any:
        return swap.get(value, value) if isinstance(value, str | datetime) else value

    if isinstance(parameters, dict):
        return {k: one(v) for k, v in parameters.items()}
    return tuple(one(v) for v in parameters)


def claim_plan(engine: Engine, captured: Captured) -> tuple[list[str], bool]:
    """The plan of the captured claim query, with the D due rows pending and now = FIRE_AT.

    SQLite: ``EXPLAIN QUERY PLAN``.  PostgreSQL: ``EXPLAIN (ANALYZE, BUFFERS)``, in a
    transaction rolled back at once (its row locks go with it): actual rows and pages
    read show the scan stops at the due rows.  True if the partial index is read.
    """
    params = at_fire_time(captured.parameters)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            sql = "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) " + captured.statement
            lines = [str(r[0]) for r in conn.exec_driver_sql(sql, params)]
        else:
            sql = "EXPLAIN QUERY PLAN " + captured.statement
            lines = [str(r[3]) for r in conn.exec_driver_sql(sql, params)]
        conn.rollback()
    plan = " ".join(lines)
    uses = INDEX in plan and "Seq Scan" not in plan and "SCAN timers" not in plan
    uses = uses and "TEMP B-TREE" not in plan
    return lines, uses


# ---------------------------------------------------------------- one size


@dataclass
class LoopResult:
    """One real loop run: the timers' lateness and the sweeps it took."""

    mode: str
    timers: int
    fired_late: list[float]  # fired_at − due, seconds
    commit_late: list[float]  # commit − due, seconds
    sweeps: int
    wakes: int


@dataclass
class SizeResult:
    backend: str
    pending: int
    due: int
    load_s: float
    idle_s: list[float]
    fire_s: list[float]
    plan: list[str]
    plan_ok: bool
    statement: str = ""
    per_timer: str = ""  # SQL statements per fired timer, by verb
    raw_s: list[float] = field(default_factory=list)
    loops: list[LoopResult] = field(default_factory=list)

    @property
    def fire_median(self) -> float:
        return statistics.median(self.fire_s)

    @property
    def rate(self) -> float:
        return self.due / self.fire_median


@dataclass
class Loaded:
    """One pending size, loaded and open: its app, its virtual clock, its due rows."""

    app: App
    clock: FixedClock
    result: SizeResult
    due_ids: list[int]
    url: str


def load(target: Target, stack: ExitStack, backend: str, pending: int, due: int) -> Loaded:
    """A fresh database with *pending* timers not due and *due* due ones, warmed up."""
    url: str = stack.enter_context(target.fresh())
    clock = FixedClock(T0)
    app = open_app(url, clock)
    stack.callback(app.close)
    engine = app.engine
    existing = count_pending(engine)  # the timers the cases wrote themselves
    started = perf_counter()
    bulk_pending(engine, pending - existing)
    load_s = perf_counter() - started
    span = DUE_SPAN.total_seconds()
    due_ids = insert_due(engine, due, DUE_FROM, lambda i: i * span / due)
    settle(engine)
    actual = count_pending(engine) - due
    log(f"{backend}: {actual:,} pending + {due:,} due loaded ({load_s:.1f} s bulk insert)")

    # Idle sweeps (nothing due); the first one's claim query is captured for EXPLAIN.
    captured = Captured()
    event.listen(engine, "before_cursor_execute", captured.listen)
    idle: list[float] = []
    try:
        clock.set(IDLE_AT)
        for _ in range(IDLE_SWEEPS):
            t0 = perf_counter()
            fired = app.timers.run_due(IDLE_AT)
            idle.append(perf_counter() - t0)
            check(fired, set(), "idle")
    finally:
        event.remove(engine, "before_cursor_execute", captured.listen)

    # Warm up (the compiled workflow, statement caches) on a few timers of their own.
    clock.set(WARMUP_AT)
    warm = insert_due(engine, WARMUP, WARMUP_AT - timedelta(seconds=WARMUP), float)
    check(app.timers.run_due(WARMUP_AT), set(warm), "warm-up")
    plan, plan_ok = claim_plan(engine, captured)
    result = SizeResult(
        backend, actual, due, load_s, idle, [], plan, plan_ok, statement=captured.statement
    )
    return Loaded(app, clock, result, due_ids, url)


class StatementCounter:
    """SQL statements sent, by verb (an ``executemany`` is one; BEGIN is not counted)."""

    def __init__(self) -> None:
        self.verbs: Counter[str] = Counter()

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        verb = statement.split(None, 1)[0].upper()
        if verb != "BEGIN":  # BEGIN IMMEDIATE on SQLite; psycopg's BEGIN is not a statement
            self.verbs[verb] += 1

    def per(self, n: int) -> str:
        each = ", ".join(f"{c / n:.3g} {verb}" for verb, c in sorted(self.verbs.items()))
        return f"{sum(self.verbs.values()) / n:.3g} ({each})"


def fire_once(loaded: Loaded, rearm_first: bool, count: bool = False) -> float:
    """Fire the due rows once (re-armed first if they fired before); the seconds taken.
    With *count*, the statements sent are counted into the result's ``per_timer``."""
    if rearm_first:
        rearm(loaded.app.engine, loaded.due_ids)
    loaded.clock.set(FIRE_AT)
    counter = StatementCounter()
    engine = loaded.app.engine
    if count:
        event.listen(engine, "before_cursor_execute", counter)
    try:
        t0 = perf_counter()
        fired = loaded.app.timers.run_due(FIRE_AT)
        seconds = perf_counter() - t0
    finally:
        if count:
            event.remove(engine, "before_cursor_execute", counter)
    check(fired, set(loaded.due_ids), "fire")
    loaded.result.fire_s.append(seconds)
    if count:
        loaded.result.per_timer = counter.per(len(loaded.due_ids))
    return seconds


RAW_BATCH = 200


def raw_fire(loaded: Loaded) -> float:
    """The due rows fired by bare ``sqlite3`` (claim, fact or notification, mark; one
    statement each), after re-arming them; the seconds taken."""
    rearm(loaded.app.engine, loaded.due_ids)
    path = loaded.url.removeprefix("sqlite:///")
    raw = sqlite3.connect(path, isolation_level=None)
    fired = 0
    try:
        raw.execute("PRAGMA synchronous = FULL")  # as the engine's default
        raw.execute("PRAGMA busy_timeout = 30000")
        at = sqlite_text(FIRE_AT)
        context = json.dumps({"snapshot": {"state": "discovered"}})
        t0 = perf_counter()
        while True:
            raw.execute("BEGIN IMMEDIATE")
            rows = raw.execute(
                "SELECT t.id, t.case_id, t.state, t.kind, t.deadline_at, c.unit_code"
                " FROM timers t JOIN cases c ON c.id = t.case_id"
                " WHERE t.status = 'pending' AND t.due_at <= ? ORDER BY t.due_at, t.id LIMIT ?",
                (at, RAW_BATCH),
            ).fetchall()
            for timer_id, case_id, state, kind, deadline_at, unit in rows:
                claimed = raw.execute(
                    "UPDATE timers SET status = 'firing', fired_by = 'raw'"
                    " WHERE id = ? AND status = 'pending'",
                    (timer_id,),
                ).rowcount
                if claimed != 1:
                    continue
                if kind == "deadline":
                    raw.execute(
                        "INSERT INTO overdue_facts (case_id, unit_code, state, deadline_at, rung,"
                        " level, recorded_at, timer_id) VALUES (?, ?, ?, ?, NULL, 0, ?, ?)",
                        (case_id, unit, state, deadline_at, at, timer_id),
                    )
                else:
                    raw.execute(
                        "INSERT INTO notifications (case_id, kind, template, roles, context,"
                        " dedupe_key, status, created_at, priority)"
                        " VALUES (?, 'reminder', 'reminder', ?, ?, ?, 'pending', ?, 0)",
                        (case_id, '["village.member"]', context, f"timer:{timer_id}", at),
                    )
                raw.execute(
                    "UPDATE timers SET status = 'fired', fired_at = ?, detail = 'raw' WHERE id = ?",
                    (at, timer_id),
                )
                fired += 1
            raw.execute("COMMIT")
            if len(rows) < RAW_BATCH:
                break
        seconds = perf_counter() - t0
    finally:
        raw.close()
    if fired != len(loaded.due_ids):
        raise RuntimeError(f"raw: fired {fired}, expected {len(loaded.due_ids)}")
    loaded.result.raw_s.append(seconds)
    return seconds


def run_backend(
    target: Target, pending: Sequence[int], args: argparse.Namespace
) -> list[SizeResult]:
    """All sizes loaded side by side; fire runs interleaved so drift hits every size alike."""
    with ExitStack() as stack:
        loaded = [load(target, stack, target.name, p, args.due) for p in pending]
        for r in range(args.repeat):
            order = loaded if r % 2 == 0 else loaded[::-1]
            for one in order:
                seconds = fire_once(one, rearm_first=r > 0, count=r == 0)
                raw = f", raw sqlite3 {raw_fire(one):.3f} s" if target.name == "sqlite" else ""
                log(
                    f"  {target.name} P={one.result.pending:,} repeat {r + 1}/{args.repeat}: "
                    f"{seconds:.3f} s{raw}"
                )
        first = loaded[0]
        base = WINDOW_FROM
        for mode in ("poll", "next_due"):
            run = loop_run(first, mode, base, args)
            first.result.loops.append(run)
            base += timedelta(seconds=args.spread + 4 * args.interval + 60)
            log(
                f"  {target.name} loop {mode}: {run.timers} timers, {run.sweeps} sweeps, "
                f"p50 fired late {percentile(run.fired_late, 0.5):.3f} s"
            )
        return [one.result for one in loaded]


def check(fired: Sequence[Fired], expected: set[int], what: str) -> None:
    ids = {f.timer_id for f in fired}
    stale = [f for f in fired if f.outcome != "fired"]
    if ids != expected or stale or len(fired) != len(expected):
        raise RuntimeError(
            f"{what}: fired {len(fired)} ({len(stale)} stale), expected {len(expected)}; "
            f"{len(ids - expected)} unexpected, {len(expected - ids)} missing"
        )


# ---------------------------------------------------------------- the real loop


class RunningClock:
    """A clock that runs in real time from *epoch* (so the bench's virtual timeline,
    with the cases' own timers hours ahead, is kept)."""

    def __init__(self, epoch: datetime) -> None:
        self.epoch = epoch
        self.started = perf_counter()

    def now(self) -> datetime:
        return self.epoch + timedelta(seconds=perf_counter() - self.started)


def loop_run(loaded: Loaded, mode: str, epoch: datetime, args: argparse.Namespace) -> LoopResult:
    """A real SweepLoop (*mode*: ``poll`` the old loop, ``next_due`` the new one) on a
    real-time clock; timers inserted once it sleeps, due 0.2 to ``--spread`` s ahead."""
    app = loaded.app
    clock = RunningClock(epoch)
    service = TimerService(app.engine, app.cases, clock, schedule=app.schedule)
    n = args.loop_timers
    fired: dict[int, tuple[Fired, float]] = {}
    done = threading.Event()
    lock = threading.Lock()

    def on_fired(f: Fired) -> None:  # right after its batch committed
        committed = (clock.now() - f.due).total_seconds()
        with lock:
            fired[f.timer_id] = (f, committed)
            if len(fired) >= n:
                done.set()

    service.on_fired.append(on_fired)
    planned = threading.Event()
    loop = SweepLoop(
        service,
        args.interval,
        follow_due=mode == "next_due",
        on_wait=lambda _at, _seconds: planned.set(),
    )
    loop.start()
    try:
        if not planned.wait(60):
            raise RuntimeError("the loop never planned its first sleep")
        rng = random.Random(SEED)
        now = clock.now()
        offsets = sorted(0.2 + rng.random() * (args.spread - 0.2) for _ in range(n))
        ids = insert_due(
            app.engine, n, now, lambda i: offsets[i]
        )  # one transaction: its commit is the wake-up
        if not done.wait(args.spread + 4 * args.interval + 60):
            raise RuntimeError(f"loop {mode}: {len(fired)} of {n} timers fired")
    finally:
        loop.stop()
    check([f for f, _ in fired.values()], set(ids), f"loop {mode}")
    return LoopResult(
        mode,
        n,
        [f.late_seconds for f, _ in fired.values()],
        [late for _, late in fired.values()],
        loop.sweeps,
        loop.wakeup.wakes,
    )


# ---------------------------------------------------------------- report


def spread(values: Sequence[float], scale: float, fmt: str) -> str:
    med = statistics.median(values) * scale
    return f"{med:{fmt}} ({min(values) * scale:{fmt}}–{max(values) * scale:{fmt}})"


def report(results: Sequence[SizeResult], args: argparse.Namespace) -> None:
    print()
    print(
        f"Claiming and firing D due timers with P pending (not due) timers: "
        f"wall time of one run_due(now), median of {args.repeat} (min–max)"
    )
    header = (
        f"{'backend':<9} {'pending P':>10} {'due D':>6} {'bulk load s':>11} "
        f"{'idle sweep ms':>14} {'fire D: s':>22} {'timers/s':>9} {'µs/timer':>9} "
        f"{'vs smallest P':>13} {'index':>6}"
    )
    print(header)
    print("-" * len(header))
    for backend in dict.fromkeys(r.backend for r in results):
        rows = [r for r in results if r.backend == backend]
        base = rows[0].fire_median
        for r in rows:
            print(
                f"{r.backend:<9} {r.pending:>10,} {r.due:>6,} {r.load_s:>11.1f} "
                f"{statistics.median(r.idle_s) * 1e3:>14.2f} {spread(r.fire_s, 1, '.3f'):>22} "
                f"{r.rate:>9,.0f} {r.fire_median * 1e6 / r.due:>9,.0f} "
                f"{r.fire_median / base:>13.2f} {'yes' if r.plan_ok else 'NO':>6}"
            )
    print("(vs smallest P = fire time ÷ fire time at the smallest P; ≈ 1.0 means the cost")
    print(" follows D, not P.  index = the claim query's plan reads ix_timers_pending_due.")
    print(" bulk load = the one INSERT ... SELECT adding P minus the cases' own 6 per case.)")
    print()
    for backend in dict.fromkeys(r.backend for r in results):
        rows = [r for r in results if r.backend == backend]
        small, large = rows[0], rows[-1]
        print(
            f"{backend}: firing {large.due:,} due timers took {large.fire_median:.3f} s "
            f"at {large.pending:,} pending and {small.fire_median:.3f} s at {small.pending:,}: "
            f"ratio {large.fire_median / small.fire_median:.2f} of medians, "
            f"{min(large.fire_s) / min(small.fire_s):.2f} of minimums (target ≈ 1.0)"
        )
        for r in rows:
            print(f"  P={r.pending:,}: SQL statements per fired timer: {r.per_timer}")
        for r in rows:
            if r.raw_s:
                raw = statistics.median(r.raw_s)
                print(
                    f"  P={r.pending:,}: bare sqlite3 (claim, fact or notification, mark: one "
                    f"statement each): {raw:.3f} s = {r.due / raw:,.0f} timers/s; the engine "
                    f"{r.rate:,.0f} timers/s = {r.rate * raw / r.due:.2f}× the bare loop"
                )
    print()
    for backend in dict.fromkeys(r.backend for r in results):
        rows = [r for r in results if r.backend == backend]
        large = rows[-1]
        print(f"{backend}: the claim query, as the sweep sent it:")
        print("  " + " ".join(large.statement.split()))
        print(f"  its plan at {large.pending:,} pending + {large.due:,} due, now = the fire time:")
        for line in large.plan:
            print(f"    {line}")
        ok = all(r.plan_ok for r in rows)
        each = ", ".join(f"{r.pending:,}: {'yes' if r.plan_ok else 'NO'}" for r in rows)
        print(f"  {INDEX} used at every size: {'yes' if ok else 'NO'} ({each})")
    print()
    print(
        f"Lateness of the real loop (SweepLoop thread, real-time clock, interval "
        f"{args.interval:g} s): {args.loop_timers} timers due 0.2–{args.spread:g} s ahead,"
    )
    print("  written in one transaction once the loop sleeps.  poll = the old loop (a sweep")
    print("  every interval, no wake-ups); next_due = sleep until the next due time or a")
    print("  commit's wake-up.  fired = fired_at − due (the firing sweep's instant);")
    print("  committed = when its batch committed − due.")
    header = (
        f"{'backend':<9} {'loop':<9} {'timers':>7} {'fired p50 / p99 s':>19} "
        f"{'committed p50 / p99 s':>23} {'sweeps':>7} {'wake-ups':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        for run in r.loops:
            fired = (
                f"{percentile(run.fired_late, 0.5):.3f} / {percentile(run.fired_late, 0.99):.3f}"
            )
            committed = (
                f"{percentile(run.commit_late, 0.5):.3f} / {percentile(run.commit_late, 0.99):.3f}"
            )
            print(
                f"{r.backend:<9} {run.mode:<9} {run.timers:>7,} {fired:>19} {committed:>23} "
                f"{run.sweeps:>7,} {run.wakes:>9,}"
            )
    for r in results:
        runs = {run.mode: run for run in r.loops}
        if "poll" in runs and "next_due" in runs:
            old = percentile(runs["poll"].fired_late, 0.5)
            new = percentile(runs["next_due"].fired_late, 0.5)
            print(
                f"{r.backend}: p50 lateness next_due ÷ poll = {new / old if old else math.nan:.4f}"
            )
    record_figures(results)


def record_figures(results: Sequence[SizeResult]) -> None:
    """The headline figures for ``bench/run_all.py``."""
    for r in results:
        raw = statistics.median(r.raw_s) if r.raw_s else None
        target = "≥ 5,000/s" if r.backend == "sqlite" else "≥ 2,000/s"
        record(
            Figure(
                bench="timers",
                name=f"fired timers, {r.pending:,} pending, {r.backend}",
                value=r.rate,
                unit="timers/s",
                baseline="bare sqlite3 loop" if raw else "",
                baseline_value=r.due / raw if raw else None,
                ratio=r.rate * raw / r.due if raw else None,
                target=target,
            )
        )
        runs = {run.mode: run for run in r.loops}
        if "poll" in runs and "next_due" in runs:
            for q, label in ((0.5, "p50"), (0.99, "p99")):
                new, old = (percentile(runs[m].fired_late, q) for m in ("next_due", "poll"))
                record(
                    Figure(
                        bench="timers",
                        name=f"loop lateness {label}, {r.backend}",
                        value=new * 1000,
                        unit="ms",
                        baseline="the old 5 s poll",
                        baseline_value=old * 1000,
                        ratio=new / old if old else None,
                        target="milliseconds",
                    )
                )


# ---------------------------------------------------------------- main


def sizes(text_value: str) -> list[int]:
    try:
        values = [int(v.replace("_", "")) for v in text_value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text_value!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"need sizes ≥ 0: {text_value!r}")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--pending",
        type=sizes,
        default=[10_000, 100_000, 1_000_000],
        help="pending sizes on SQLite (default 10000,100000,1000000)",
    )
    parser.add_argument("--due", type=int, default=1000, help="due timers per run (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="fire runs per size (default 3)")
    parser.add_argument(
        "--cases", type=int, default=1000, help="cases opened by the service (default 1000)"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=5.0,
        help="the loop's interval: the old loop's period, the new loop's longest sleep (default 5)",
    )
    parser.add_argument(
        "--loop-timers", type=int, default=200, help="timers for the loop's lateness (default 200)"
    )
    parser.add_argument(
        "--spread", type=float, default=4.0, help="they fall due over this many seconds (default 4)"
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also run on PostgreSQL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument(
        "--pg-pending",
        type=sizes,
        help="pending sizes on PostgreSQL (default: those of --pending)",
    )
    args = parser.parse_args(argv)
    if min(args.due, args.repeat, args.cases, args.loop_timers) < 1 or args.interval <= 0:
        parser.error("--due, --repeat, --cases, --loop-timers must be ≥ 1 and --interval > 0")
    if args.spread <= 0.2:
        parser.error("--spread must be more than 0.2 s")

    results: list[SizeResult] = []
    with tempfile.TemporaryDirectory(prefix="gengbao-bench-timers-") as folder:
        sqlite = SqliteTarget(Path(folder), args.cases)
        results += run_backend(sqlite, args.pending, args)
    if args.postgres:
        pg = PostgresTarget(args.postgres, args.cases)
        try:
            results += run_backend(pg, args.pg_pending or args.pending, args)
        finally:
            pg.close()
    report(results, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
