"""Event throughput of the case service, against a bare SQLAlchemy Core loop.

Usage::

    python bench/events.py [--cases N] [--repeat R] [--postgres URL] [--profile]
                           [--sqlite-synchronous full|normal|extra]

Each run walks N farmland cases through their full lifecycle (``create_case``
and the 7 events of ``tests/support/farmland.py``), one transaction per operation,
single process, single thread, with a :class:`~engine.clock.FixedClock`
advanced by a minute before every operation.  The baseline is a bare Core loop
on the same engine and tables (so the same pragmas and ``BEGIN IMMEDIATE``):

* create: insert the case row, its first history row (sha256 chained with
  :func:`engine.cases.history.row_hash`) and its state_entries row;
* event: select the case row (``FOR UPDATE`` on PostgreSQL), update it
  (state, data JSON, revision and timestamps), insert the history row and
  the state_entries row.  The previous hash is carried in memory.

Engine and bare runs alternate within each repeat; the table shows medians
over the repeats with min–max.  The machine may be shared and noisy, so read
medians and ratios; nothing here asserts a speed.

SQLite runs on a fresh file in a temporary folder (WAL, ``PRAGMA synchronous``
as ``--sqlite-synchronous`` says: ``full`` by default, as gengbao runs); with ``--postgres``
the same runs go to a fresh schema ``bench_<random>`` (reached through
``search_path`` in the URL), dropped at the end.  ``--profile`` adds one
engine run per backend under cProfile and prints where an operation's time
goes (profiling inflates Python-heavy parts: read the shares, not the µs).
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import secrets
import statistics
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from time import perf_counter_ns
from types import CodeType
from typing import Any, TypeVar

from sqlalchemy import event, insert, select, update

import engine as engine_package
from engine.calendars import WorkingCalendar
from engine.cases.catalog import Catalog
from engine.cases.history import GENESIS, HASH_SCHEME, hashed_fields, row_hash
from engine.cases.service import CaseService, Effects
from engine.clock import FixedClock
from engine.grid.registry import load_grid
from engine.store.db import SQLITE_SYNCHRONOUS_LEVELS, make_engine, normalize_url, upgrade
from engine.store.tables import cases, history, state_entries
from engine.timers import TimerSchedule
from notifications.outbox import TransitionNotifications
from notifications.templates import TemplateStore

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/events.py` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

from tests.support.farmland import (  # noqa: E402
    CASE_DATA,
    GRID_FILE,
    LIFECYCLE,
    REPORTER,
    UNIT,
    WORKFLOW_FILE,
)

START = datetime(2026, 9, 18, 2, 0, tzinfo=UTC)
TICK = timedelta(minutes=1)
TARGET_RATIO = 0.5
WARMUP_CASES = 10
PROFILE_TOP = 15
ENGINE_DIR = str(Path(engine_package.__file__).resolve().parent)

H = TypeVar("H")


# ---------------------------------------------------------------- the workload


@dataclass(frozen=True, kw_only=True)
class Step:
    """One lifecycle event, with what the bare loop needs to write it."""

    trigger: str
    actor: str
    payload: dict[str, Any]
    fields: tuple[str, ...]  # payload names that are case fields (merged into the data)
    dest: str
    final: bool


@dataclass(frozen=True, kw_only=True)
class Timing:
    """One run: operations done and the seconds spent in them (loop overhead excluded)."""

    creates: int
    events: int
    create_s: float
    event_s: float

    def rate(self, phase: str) -> float:
        ops, seconds = self.count(phase)
        return ops / seconds

    def us_per_op(self, phase: str) -> float:
        ops, seconds = self.count(phase)
        return seconds * 1e6 / ops

    def count(self, phase: str) -> tuple[int, float]:
        if phase == "create":
            return self.creates, self.create_s
        if phase == "event":
            return self.events, self.event_s
        return self.creates + self.events, self.create_s + self.event_s


PHASES = ("lifecycle", "create", "event")


class Bench:
    """One migrated database with the grid and the workflow loaded, and both write paths."""

    def __init__(
        self, backend: str, url: str, deployed: bool = False, synchronous: str = "full"
    ) -> None:
        self.backend = backend
        self.engine = make_engine(url, sqlite_synchronous=synchronous)
        upgrade(self.engine)
        load_grid(self.engine, GRID_FILE)
        self.clock = FixedClock(START)
        catalog = Catalog(self.engine, self.clock, TemplateStore().check)
        # --deployed: the effects `gengbao` runs with (timer rows, notification outbox);
        # the default measures the core event path the bare loop mirrors.
        effects: list[Effects] = (
            [TimerSchedule(WorkingCalendar(), "Asia/Shanghai"), TransitionNotifications()]
            if deployed
            else []
        )
        self.service = CaseService(self.engine, catalog, self.clock, effects)
        registered = catalog.register_file(WORKFLOW_FILE)
        self.workflow = registered.workflow
        self.definition_id = registered.definition_id
        self.pg = self.engine.dialect.name == "postgresql"
        with self.engine.connect() as conn:
            wf = catalog.compiled(conn, self.definition_id).workflow
        self.initial = wf.initial
        self.steps = [
            Step(
                trigger=trigger,
                actor=actor,
                payload=payload,
                fields=tuple(k for k in payload if wf.field(k) is not None),
                dest=reached,
                final=wf.state(reached).final,
            )
            for trigger, actor, payload, reached in LIFECYCLE
        ]
        # What the engine stores at creation (defaults filled in): the bare loop writes the same.
        self.created_data = self.service.create_case(self.workflow, UNIT, REPORTER, CASE_DATA).data
        self._bare_ids = itertools.count(1)
        self._bare_prefix = secrets.token_hex(3).upper()

    def close(self) -> None:
        self.engine.dispose()

    # -- the engine path -------------------------------------------------
    def engine_create(self) -> str:
        return self.service.create_case(self.workflow, UNIT, REPORTER, CASE_DATA).id

    def engine_event(self, case_id: str, step: Step) -> str:
        view = self.service.submit_event(case_id, step.trigger, step.actor, step.payload)
        if view.state != step.dest:
            raise RuntimeError(f"{step.trigger} reached {view.state}, expected {step.dest}")
        return case_id

    # -- the bare Core path ----------------------------------------------
    def bare_create(self) -> tuple[str, str]:
        now = self.clock.now()
        case_id = f"B{now:%Y%m%d}-{self._bare_prefix}{next(self._bare_ids):06d}"
        with self.engine.begin() as conn:
            conn.execute(
                insert(cases).values(
                    id=case_id,
                    workflow=self.workflow,
                    definition_id=self.definition_id,
                    state=self.initial,
                    unit_code=UNIT,
                    data=self.created_data,
                    revision=1,
                    escalation_level=0,
                    opened_at=now,
                    state_entered_at=now,
                    closed_at=None,
                    updated_at=now,
                    created_by=REPORTER,
                )
            )
            values = {
                "case_id": case_id,
                "seq": 1,
                "at": now,
                "actor": REPORTER,
                "trigger": "create",
                "from_state": None,
                "to_state": self.initial,
                "payload": self.created_data,
                "definition_id": self.definition_id,
                "hash_scheme": HASH_SCHEME,
            }
            digest = row_hash(GENESIS, hashed_fields(values))
            conn.execute(insert(history).values(**values, prev_hash=GENESIS, hash=digest))
            conn.execute(
                insert(state_entries).values(
                    case_id=case_id, state=self.initial, first_entered_at=now
                )
            )
        return case_id, digest

    def bare_event(self, handle: tuple[str, str], step: Step) -> tuple[str, str]:
        case_id, prev_hash = handle
        with self.engine.begin() as conn:
            stmt = select(cases).where(cases.c.id == case_id)
            row = conn.execute(stmt.with_for_update() if self.pg else stmt).one()
            now = self.clock.now()
            data = {**row.data, **{k: step.payload[k] for k in step.fields}}
            revision = row.revision + 1
            conn.execute(
                update(cases)
                .where(cases.c.id == case_id, cases.c.revision == row.revision)
                .values(
                    state=step.dest,
                    data=data,
                    revision=revision,
                    escalation_level=0,
                    state_entered_at=now,
                    closed_at=now if step.final else None,
                    updated_at=now,
                )
            )
            values = {
                "case_id": case_id,
                "seq": revision,
                "at": now,
                "actor": step.actor,
                "trigger": step.trigger,
                "from_state": row.state,
                "to_state": step.dest,
                "payload": step.payload,
                "definition_id": row.definition_id,
                "hash_scheme": HASH_SCHEME,
            }
            digest = row_hash(prev_hash, hashed_fields(values))
            conn.execute(insert(history).values(**values, prev_hash=prev_hash, hash=digest))
            conn.execute(
                insert(state_entries).values(case_id=case_id, state=step.dest, first_entered_at=now)
            )
        return case_id, digest

    # -- running ---------------------------------------------------------
    def run(
        self,
        n: int,
        create: Callable[[], H],
        fire: Callable[[H, Step], H],
        on_phase: Callable[[str], None] | None = None,
    ) -> Timing:
        """N full lifecycles; only the calls themselves are timed."""
        create_ns = event_ns = 0
        for _ in range(n):
            if on_phase is not None:
                on_phase("create")
            self.clock.advance(TICK)
            t0 = perf_counter_ns()
            handle = create()
            create_ns += perf_counter_ns() - t0
            if on_phase is not None:
                on_phase("event")
            for step in self.steps:
                self.clock.advance(TICK)
                t0 = perf_counter_ns()
                handle = fire(handle, step)
                event_ns += perf_counter_ns() - t0
        return Timing(
            creates=n,
            events=n * len(self.steps),
            create_s=create_ns / 1e9,
            event_s=event_ns / 1e9,
        )

    def run_engine(self, n: int, on_phase: Callable[[str], None] | None = None) -> Timing:
        return self.run(n, self.engine_create, self.engine_event, on_phase)

    def run_bare(self, n: int, on_phase: Callable[[str], None] | None = None) -> Timing:
        return self.run(n, self.bare_create, self.bare_event, on_phase)


# ---------------------------------------------------------------- statements per op


class StatementCounter:
    """Counts SQL statements by verb, per phase of a lifecycle (BEGIN not counted)."""

    def __init__(self) -> None:
        self.phase = "create"
        self.counts: dict[str, Counter[str]] = {"create": Counter(), "event": Counter()}

    def switch(self, phase: str) -> None:
        self.phase = phase

    def before_cursor_execute(self, *args: Any) -> None:
        statement: str = args[2]  # (conn, cursor, statement, parameters, context, executemany)
        verb = statement.split(None, 1)[0].upper()
        if verb != "BEGIN":
            self.counts[self.phase][verb] += 1


def count_statements(bench: Bench, cases_n: int = 3) -> dict[str, dict[str, str]]:
    """SQL statements per create and per event on each path, described as text."""
    out: dict[str, dict[str, str]] = {}
    for path, runner in (("engine", bench.run_engine), ("bare", bench.run_bare)):
        counter = StatementCounter()
        event.listen(bench.engine, "before_cursor_execute", counter.before_cursor_execute)
        try:
            runner(cases_n, counter.switch)
        finally:
            event.remove(bench.engine, "before_cursor_execute", counter.before_cursor_execute)
        out[path] = {
            "create": describe(counter.counts["create"], cases_n),
            "event": describe(counter.counts["event"], cases_n * len(bench.steps)),
        }
    return out


def describe(counts: Counter[str], ops: int) -> str:
    parts = ", ".join(f"{n / ops:g} {verb}" for verb, n in sorted(counts.items()))
    return f"{sum(counts.values()) / ops:g} ({parts})"


# ---------------------------------------------------------------- measuring


@dataclass
class Result:
    backend: str
    engine: list[Timing]
    bare: list[Timing]
    statements: dict[str, dict[str, str]]


def measure(bench: Bench, n: int, repeat: int) -> Result:
    bench.run_engine(WARMUP_CASES)
    bench.run_bare(WARMUP_CASES)
    statements = count_statements(bench)
    engine_runs: list[Timing] = []
    bare_runs: list[Timing] = []
    for r in range(repeat):
        if r % 2 == 0:  # alternate the order so drift hits both paths alike
            engine_runs.append(bench.run_engine(n))
            bare_runs.append(bench.run_bare(n))
        else:
            bare_runs.append(bench.run_bare(n))
            engine_runs.append(bench.run_engine(n))
        print(
            f"  {bench.backend} repeat {r + 1}/{repeat}: "
            f"engine {engine_runs[-1].rate('lifecycle'):,.0f} ops/s, "
            f"bare {bare_runs[-1].rate('lifecycle'):,.0f} ops/s",
            file=sys.stderr,
            flush=True,
        )
    return Result(bench.backend, engine_runs, bare_runs, statements)


def spread(values: Sequence[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"


def print_table(results: Sequence[Result], n: int, repeat: int, steps: int) -> None:
    ops = n * (steps + 1)
    print()
    print(
        f"gengbao event throughput: {n} cases × (create + {steps} events) = {ops} ops per run, "
        f"median of {repeat} (min–max)"
    )
    header = (
        f"{'backend':<13} {'phase':<10} {'engine ops/s':>22} {'bare Core ops/s':>22} "
        f"{'engine/bare':>20} {'engine µs/op':>13} {'bare µs/op':>11}"
    )
    print(header)
    print("-" * len(header))
    for res in results:
        for phase in PHASES:
            eng = [t.rate(phase) for t in res.engine]
            bare = [t.rate(phase) for t in res.bare]
            ratios = [e / b for e, b in zip(eng, bare, strict=True)]
            ratio = statistics.median(ratios)
            flag = "" if ratio >= TARGET_RATIO else " <"
            print(
                f"{res.backend:<13} {phase:<10} {spread(eng, ',.0f'):>22} "
                f"{spread(bare, ',.0f'):>22} {spread(ratios, '.2f') + flag:>20} "
                f"{statistics.median(t.us_per_op(phase) for t in res.engine):>13,.0f} "
                f"{statistics.median(t.us_per_op(phase) for t in res.bare):>11,.0f}"
            )
    print(f"(ratio = engine ops/s ÷ bare ops/s; target ≥ {TARGET_RATIO}; '<' marks a miss)")
    print()
    print("SQL statements per operation (BEGIN not counted; commit is not a statement):")
    for res in results:
        for path in ("engine", "bare"):
            per = res.statements[path]
            print(f"  {res.backend:<13} {path:<7} create {per['create']:<32} event {per['event']}")


# ---------------------------------------------------------------- profiling

# (label, file suffix, qualified name): the phases of one operation.
BREAKDOWN: list[tuple[str, str, str]] = [
    ("whole operation (one transaction)", "engine/cases/service.py", "CaseService._idempotent"),
    ("  create body", "engine/cases/service.py", "CaseService._create"),
    ("  event body", "engine/cases/service.py", "CaseService._event"),
    ("catalog.latest (SQL)", "engine/cases/catalog.py", "Catalog.latest"),
    ("catalog.compiled (cached)", "engine/cases/catalog.py", "Catalog.compiled"),
    ("permission: CaseService._roles", "engine/cases/service.py", "CaseService._roles"),
    ("  grid.get_person", "engine/grid/registry.py", "get_person"),
    ("  grid.person_roles_on_chain", "engine/grid/registry.py", "person_roles_on_chain"),
    ("  grid._chain_codes", "engine/grid/registry.py", "_chain_codes"),
    ("grid.get_unit (create)", "engine/grid/registry.py", "get_unit"),
    ("machine options", "engine/definitions/compiler.py", "CompiledWorkflow.options"),
    ("machine fire", "engine/definitions/compiler.py", "CompiledWorkflow.fire"),
    ("validation: validate_data", "engine/definitions/values.py", "validate_data"),
    ("  _case_data", "engine/cases/service.py", "_case_data"),
    ("history: CaseService._record", "engine/cases/service.py", "CaseService._record"),
    ("  history.row_hash", "engine/cases/history.py", "row_hash"),
    ("_version_number (SQL)", "engine/cases/service.py", "CaseService._version_number"),
    ("_jsonable (json round trip)", "engine/cases/service.py", "_jsonable"),
    ("SQL: Connection.execute", "sqlalchemy/engine/base.py", "Connection.execute"),
    ("  SA cache key generation", "sqlalchemy/sql/cache_key.py", "HasCacheKey._generate_cache_key"),
    ("  driver: cursor.execute", "sqlalchemy/engine/default.py", "DefaultDialect.do_execute"),
    ("SA building: column == value", "sqlalchemy/sql/operators.py", "ColumnOperators.__eq__"),
    ("SA building: insert/update .values()", "sqlalchemy/sql/dml.py", "ValuesBase.values"),
    ("BEGIN", "sqlalchemy/engine/base.py", "Connection._begin_impl"),
    ("COMMIT", "sqlalchemy/engine/base.py", "Connection._commit_impl"),
]


@dataclass(frozen=True)
class Entry:
    file: str
    line: int
    name: str
    calls: int
    tottime: float
    cumtime: float


def profile_entries(profiler: cProfile.Profile) -> list[Entry]:
    entries: list[Entry] = []
    for e in profiler.getstats():
        if isinstance(e.code, CodeType):
            file, line, name = e.code.co_filename, e.code.co_firstlineno, e.code.co_qualname
        else:
            file, line, name = "~", 0, e.code
        calls = e.callcount - e.reccallcount  # primitive calls, as pstats counts them
        entries.append(Entry(file, line, name, calls, e.inlinetime, e.totaltime))
    return entries


def profile(bench: Bench, n: int) -> list[str]:
    """One engine run under cProfile: the phase breakdown and the top entries, as lines."""
    profiler = cProfile.Profile()
    profiler.enable()
    timing = bench.run_engine(n)
    profiler.disable()
    ops = timing.creates + timing.events
    entries = profile_entries(profiler)
    lines = [
        "",
        f"profile: {bench.backend}, engine path, {n} cases ({ops} ops) under cProfile "
        f"({timing.us_per_op('lifecycle'):,.0f} µs/op while profiled)",
        f"{'phase':<38} {'calls/op':>9} {'µs/op':>9} {'share':>7}",
    ]
    _, whole_file, whole_name = BREAKDOWN[0]
    total = sum(e.cumtime for e in entries if e.file.endswith(whole_file) and e.name == whole_name)
    for label, suffix, qualname in BREAKDOWN:
        found = [e for e in entries if e.file.endswith(suffix) and e.name == qualname]
        calls = sum(e.calls for e in found)
        cum = sum(e.cumtime for e in found)
        share = cum / total if total else 0.0
        lines.append(f"{label:<38} {calls / ops:>9.2f} {cum * 1e6 / ops:>9.1f} {share:>7.0%}")
    lines += [
        "",
        f"top {PROFILE_TOP} cumulative under engine/ (per op):",
        f"{'calls/op':>9} {'own µs':>8} {'cum µs':>8}  function",
    ]
    ours = sorted(
        (e for e in entries if e.file.startswith(ENGINE_DIR + "/")), key=lambda e: -e.cumtime
    )
    for e in ours[:PROFILE_TOP]:
        where = Path(e.file).relative_to(Path(ENGINE_DIR).parent)
        lines.append(
            f"{e.calls / ops:>9.2f} {e.tottime * 1e6 / ops:>8.1f} {e.cumtime * 1e6 / ops:>8.1f}  "
            f"{where}:{e.line} {e.name}"
        )
    return lines


# ---------------------------------------------------------------- databases


@contextmanager
def sqlite_bench(deployed: bool = False, synchronous: str = "full") -> Iterator[Bench]:
    with tempfile.TemporaryDirectory(prefix="gengbao-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        bench = Bench(f"sqlite/{synchronous}", url, deployed, synchronous)
        try:
            yield bench
        finally:
            bench.close()


@contextmanager
def postgres_bench(base: str, deployed: bool = False) -> Iterator[Bench]:
    schema = f"bench_{secrets.token_hex(5)}"
    admin = make_engine(base).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        url = normalize_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        bench = Bench("postgres", url.render_as_string(hide_password=False), deployed)
        try:
            yield bench
        finally:
            bench.close()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=200, help="cases per run (default 200)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per path (default 5)")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also run on PostgreSQL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile one extra engine run per backend"
    )
    parser.add_argument(
        "--deployed",
        action="store_true",
        help="run the engine with its timer and outbox effects (the bare loop writes neither)",
    )
    parser.add_argument(
        "--sqlite-synchronous",
        action="append",
        choices=sorted(SQLITE_SYNCHRONOUS_LEVELS),
        help="SQLite's PRAGMA synchronous (default full, as gengbao runs); "
        "repeat the flag to compare levels side by side",
    )
    args = parser.parse_args(argv)
    if args.cases < 1 or args.repeat < 1:
        parser.error("--cases and --repeat must be at least 1")

    deployed: bool = args.deployed
    levels: list[str] = args.sqlite_synchronous or ["full"]
    backends: list[Callable[[], AbstractContextManager[Bench]]] = [
        partial(sqlite_bench, deployed, level) for level in levels
    ]
    if args.postgres:
        url: str = args.postgres
        backends.append(lambda: postgres_bench(url, deployed))
    results: list[Result] = []
    profiles: list[str] = []
    for open_bench in backends:
        with open_bench() as bench:
            results.append(measure(bench, args.cases, args.repeat))
            if args.profile:
                profiles += profile(bench, args.cases)
    print_table(results, args.cases, args.repeat, len(LIFECYCLE))
    for line in profiles:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
