"""Event throughput of the case service, against the raw driver doing the same writes.

Usage::

    python bench/events.py [--cases N] [--repeat R] [--postgres URL] [--profile] [--core]
                           [--sqlite-synchronous full|normal|extra]

Each run walks N farmland cases through their full lifecycle (``create_case``
and the 7 events of ``tests/support/farmland.py``), one transaction per operation,
single process, single thread, with a :class:`~engine.clock.FixedClock`
advanced by a minute before every operation.  The engine runs with the effects
``gengbao serve`` runs (timer rows, notification outbox; ``--core``: without).
Three paths, on the same database, rotated within each repeat:

* **engine**: ``CaseService.create_case`` / ``submit_event``;
* **raw loop**: the same logical writes through the bare DBAPI connection
  (``sqlite3`` / ``psycopg``), SQL written by hand: for an event, select the
  case (``FOR UPDATE`` on PostgreSQL), insert the history row (sha256
  chained with :func:`engine.cases.history.row_hash`) and the state's first
  entry, cancel the old state's timers, insert the new state's timer rows
  (``executemany``) and outbox rows, update the case; for a create, the id
  counter, the case row, its history and state entry, timers and outbox.  How
  many timer and outbox rows each operation writes is taken from what the
  engine wrote (captured once), so the loop writes exactly as much;
* **replay**: the engine's own statements and parameters for one lifecycle,
  captured with a ``before_cursor_execute`` listener, executed again through
  the bare driver for new case ids: the database's share of the engine's time.

The table shows medians over the repeats with min–max, engine ÷ raw loop
(targets: ≥ 0.33 on SQLite, ≥ 0.5 on PostgreSQL) and engine ÷ replay, and the
SQL statements per operation of each path (the engine's counted by the
listener, the raw paths' by the wrapper that runs them).  The machine may be
shared and noisy, so read medians and ratios; nothing here asserts a speed.

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
import json
import secrets
import sqlite3
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

from sqlalchemy import event

import engine as engine_package
from engine.calendars import WorkingCalendar
from engine.cases.catalog import Catalog
from engine.cases.history import GENESIS, HASH_SCHEME, hashed_fields, row_hash
from engine.cases.service import CaseService, Effects
from engine.clock import FixedClock
from engine.grid.registry import load_grid
from engine.store.db import SQLITE_SYNCHRONOUS_LEVELS, make_engine, normalize_url, upgrade
from engine.timers import TimerSchedule
from notifications.outbox import TransitionNotifications
from notifications.templates import TemplateStore

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/events.py` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

from bench.figures import Figure, record  # noqa: E402
from tests.support.farmland import (  # noqa: E402
    CASE_DATA,
    GRID_FILE,
    LIFECYCLE,
    REPORTER,
    UNIT,
    WORKFLOW_FILE,
)

START = datetime(2026, 9, 18, 2, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TICK = timedelta(minutes=1)
TARGET_RATIO = 0.5
WARMUP_CASES = 10
PROFILE_TOP = 15
ENGINE_DIR = str(Path(engine_package.__file__).resolve().parent)

H = TypeVar("H")


# ---------------------------------------------------------------- the workload


@dataclass(frozen=True, kw_only=True)
class Step:
    """One lifecycle event, with what the raw loop needs to write it."""

    index: int  # its place in the lifecycle, from 0
    trigger: str
    actor: str
    payload: dict[str, Any]
    fields: tuple[str, ...]  # payload names that are case fields (merged into the data)
    dest: str
    final: bool


@dataclass(frozen=True)
class Shape:
    """What the engine's effects wrote for one operation: timer rows, outbox rows."""

    timers: int = 0
    notifications: int = 0


@dataclass(frozen=True)
class RawHandle:
    case_id: str
    prev_hash: str
    data: dict[str, Any]


# (statement, parameters, executemany) as the engine handed them to the driver
Script = list[tuple[str, Any, bool]]


class RawDriver:
    """The bare DBAPI connection (sqlite3 or psycopg) on the bench's database, counting
    the statements it runs.  SQL is written with ``?`` placeholders (``%s`` on PostgreSQL)."""

    def __init__(self, engine: Any, synchronous: str) -> None:
        self.pg = engine.dialect.name == "postgresql"
        url = engine.url
        if self.pg:
            import psycopg
            from psycopg.types.json import Jsonb

            self._jsonb = Jsonb
            self.conn: Any = psycopg.connect(
                host=url.host,
                port=url.port or 5432,
                user=url.username,
                dbname=url.database,
                options=url.query.get("options"),
            )
        else:
            self.conn = sqlite3.connect(url.database, isolation_level=None)
            for pragma in (
                "busy_timeout = 5000",
                "journal_mode = WAL",
                f"synchronous = {SQLITE_SYNCHRONOUS_LEVELS[synchronous]}",
                "foreign_keys = ON",
            ):
                self.conn.execute(f"PRAGMA {pragma}")
        self.cursor = self.conn.cursor()
        self.statements = 0

    def close(self) -> None:
        self.conn.close()

    def begin(self) -> None:
        if not self.pg:  # psycopg opens its transaction with the first statement
            self.cursor.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.conn.commit() if self.pg else self.cursor.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any]) -> Any:
        self.statements += 1
        self.cursor.execute(sql.replace("?", "%s") if self.pg else sql, params)
        return self.cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.statements += 1
        self.cursor.executemany(sql.replace("?", "%s") if self.pg else sql, rows)

    def at(self, moment: datetime | None) -> Any:
        if moment is None or self.pg:
            return moment
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

    def json(self, value: Any) -> Any:
        return self._jsonb(value) if self.pg else json.dumps(value, ensure_ascii=False)

    def from_json(self, value: Any) -> Any:
        return value if self.pg else json.loads(value)

    def replay(self, script: Script, old_id: str, new_id: str) -> None:
        """Run the engine's statements of one operation again, for another case id."""
        self.begin()
        for statement, params, many in script:
            self.statements += 1
            if many:
                self.cursor.executemany(statement, [_swap(p, old_id, new_id) for p in params])
            else:
                self.cursor.execute(statement, _swap(params, old_id, new_id))
                if self.cursor.description is not None:
                    self.cursor.fetchall()
        self.commit()


def _swap(params: Any, old: str, new: str) -> Any:
    def one(value: Any) -> Any:
        return value.replace(old, new) if isinstance(value, str) else value

    if isinstance(params, dict):
        return {k: one(v) for k, v in params.items()}
    return tuple(one(v) for v in params)


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


def _shape(script: Script) -> Shape:
    def rows(table: str) -> int:
        n = 0
        for statement, params, many in script:
            if statement.lstrip().upper().startswith(f"INSERT INTO {table.upper()} "):
                n += len(params) if many else max(1, statement.upper().count("), ("))
        return n

    return Shape(timers=rows("timers"), notifications=rows("notifications"))


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
        # without them (--core) the core event path alone.
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
                index=index,
                trigger=trigger,
                actor=actor,
                payload=payload,
                fields=tuple(k for k in payload if wf.field(k) is not None),
                dest=reached,
                final=wf.state(reached).final,
            )
            for index, (trigger, actor, payload, reached) in enumerate(LIFECYCLE)
        ]
        # What the engine stores at creation (defaults filled in): the raw loop writes the same.
        self.created_data = self.service.create_case(self.workflow, UNIT, REPORTER, CASE_DATA).data
        self._raw_ids = itertools.count(1)
        self._raw_prefix = secrets.token_hex(3).upper()
        self.raw = RawDriver(self.engine, synchronous)
        self.script_case, self.script, self.shapes = self.capture()

    def capture(self) -> tuple[str, list[Script], list[Shape]]:
        """One warm engine lifecycle, recorded: each operation's statements as the
        driver got them (for the replay), and the timer and outbox rows it wrote
        (for the raw loop)."""
        self.run_engine(2)  # roles cached, statements compiled
        ops: list[Script] = []

        def record(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
            if statement.split(None, 1)[0].upper() != "BEGIN":
                ops[-1].append((statement, params, many))

        event.listen(self.engine, "before_cursor_execute", record)
        try:
            case_id = ""

            def create() -> str:
                nonlocal case_id
                ops.append([])
                case_id = self.engine_create()
                return case_id

            def fire(handle: str, step: Step) -> str:
                ops.append([])
                return self.engine_event(handle, step)

            self.run(1, create, fire)
        finally:
            event.remove(self.engine, "before_cursor_execute", record)
        shapes = [_shape(op) for op in ops]
        return case_id, ops, shapes

    def close(self) -> None:
        self.raw.close()
        self.engine.dispose()

    # -- the engine path -------------------------------------------------
    def engine_create(self) -> str:
        return self.service.create_case(self.workflow, UNIT, REPORTER, CASE_DATA).id

    def engine_event(self, case_id: str, step: Step) -> str:
        view = self.service.submit_event(case_id, step.trigger, step.actor, step.payload)
        if view.state != step.dest:
            raise RuntimeError(f"{step.trigger} reached {view.state}, expected {step.dest}")
        return case_id

    # -- the raw driver loop ---------------------------------------------
    # The same logical writes as the engine, through the bare DBAPI connection: no
    # SQLAlchemy, SQL written out by hand.  What to write per operation (how many
    # timer rows, whether an outbox row) is taken from the engine's own writes.
    def raw_create(self) -> RawHandle:
        now = self.clock.now()
        case_id = f"R{now:%Y%m%d}-{self._raw_prefix}{next(self._raw_ids):06d}"
        shape = self.shapes[0]
        db = self.raw
        db.begin()
        db.execute(
            "INSERT INTO id_counters (prefix, day, last) VALUES (?, ?, 1) "
            "ON CONFLICT (prefix, day) DO UPDATE SET last = id_counters.last + 1 RETURNING last",
            ("R", f"{now:%Y%m%d}"),
        ).fetchall()
        values = self._history(case_id, 1, now, REPORTER, "create", None, self.initial)
        digest = row_hash(GENESIS, hashed_fields(values))
        deadline = now + DAY if shape.timers else None
        db.execute(
            "INSERT INTO cases (id, workflow, definition_id, state, unit_code, data, revision, "
            "escalation_level, opened_at, state_entered_at, closed_at, deadline_at, head_hash, "
            "updated_at, created_by) VALUES (?, ?, ?, ?, ?, ?, 1, 0, ?, ?, NULL, ?, ?, ?, ?)",
            (
                case_id,
                self.workflow,
                self.definition_id,
                self.initial,
                UNIT,
                db.json(self.created_data),
                db.at(now),
                db.at(now),
                db.at(deadline),
                digest,
                db.at(now),
                REPORTER,
            ),
        )
        self._raw_record(case_id, values, GENESIS, digest)
        self._raw_effects(case_id, 1, self.initial, now, shape)
        db.commit()
        return RawHandle(case_id, digest, self.created_data)

    def raw_event(self, handle: RawHandle, step: Step) -> RawHandle:
        db = self.raw
        now = self.clock.now()
        db.begin()
        row = db.execute(
            "SELECT state, data, revision, definition_id, head_hash FROM cases WHERE id = ?"
            + (" FOR UPDATE" if self.pg else ""),
            (handle.case_id,),
        ).fetchone()
        data = {**db.from_json(row[1]), **{k: step.payload[k] for k in step.fields}}
        revision = row[2] + 1
        values = self._history(
            handle.case_id, revision, now, step.actor, step.trigger, row[0], step.dest
        )
        values["payload"] = step.payload
        digest = row_hash(row[4], hashed_fields(values))
        self._raw_record(handle.case_id, values, row[4], digest)
        shape = self.shapes[step.index + 1]
        db.execute(
            "UPDATE timers SET status = 'cancelled', next_attempt_at = NULL "
            "WHERE case_id = ? AND status IN ('pending', 'failed')",
            (handle.case_id,),
        )
        self._raw_effects(handle.case_id, revision, step.dest, now, shape)
        db.execute(
            "UPDATE cases SET state = ?, data = ?, revision = ?, escalation_level = 0, "
            "state_entered_at = ?, closed_at = ?, deadline_at = ?, head_hash = ?, updated_at = ? "
            "WHERE id = ? AND revision = ?",
            (
                step.dest,
                db.json(data),
                revision,
                db.at(now),
                db.at(now if step.final else None),
                db.at(now + DAY if shape.timers else None),
                digest,
                db.at(now),
                handle.case_id,
                row[2],
            ),
        )
        db.commit()
        return RawHandle(handle.case_id, digest, data)

    def _history(
        self,
        case_id: str,
        seq: int,
        at: datetime,
        actor: str,
        trigger: str,
        from_state: str | None,
        to_state: str,
    ) -> dict[str, Any]:
        return {
            "case_id": case_id,
            "seq": seq,
            "at": at,
            "actor": actor,
            "trigger": trigger,
            "from_state": from_state,
            "to_state": to_state,
            "payload": self.created_data,
            "definition_id": self.definition_id,
        }

    def _raw_record(self, case_id: str, values: dict[str, Any], prev: str, digest: str) -> None:
        db = self.raw
        db.execute(
            "INSERT INTO history (case_id, seq, at, actor, trigger, from_state, to_state, "
            "payload, definition_id, prev_hash, hash, hash_scheme) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                case_id,
                values["seq"],
                db.at(values["at"]),
                values["actor"],
                values["trigger"],
                values["from_state"],
                values["to_state"],
                db.json(values["payload"]),
                values["definition_id"],
                prev,
                digest,
                HASH_SCHEME,
            ),
        )
        db.execute(
            "INSERT INTO state_entries (case_id, state, first_entered_at) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (case_id, values["to_state"], db.at(values["at"])),
        )

    def _raw_effects(
        self, case_id: str, revision: int, state: str, now: datetime, shape: Shape
    ) -> None:
        db = self.raw
        if shape.timers:
            deadline = db.at(now + DAY)
            db.executemany(
                "INSERT INTO timers (case_id, state, case_revision, kind, rung, deadline_at, "
                "due_at, repeat_seconds, status, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 'pending', ?)",
                [
                    (case_id, state, revision, "reminder", None, deadline, deadline, db.at(now))
                    for _ in range(shape.timers)
                ],
            )
        for i in range(shape.notifications):
            db.execute(
                "INSERT INTO notifications (case_id, kind, template, roles, context, "
                "dedupe_key, status, created_at, priority) "
                "VALUES (?, 'transition', 'transition', ?, ?, ?, 'pending', ?, 0) RETURNING id",
                (
                    case_id,
                    db.json(["town.leader"]),
                    db.json({"event": {"trigger": state}}),
                    f"raw:{case_id}:{revision}:{i}",
                    db.at(now),
                ),
            ).fetchall()

    # -- the raw replay of the engine's own SQL ----------------------------
    def replay_create(self) -> str:
        case_id = f"X{self.clock.now():%Y%m%d}-{self._raw_prefix}{next(self._raw_ids):06d}"
        self.raw.replay(self.script[0], self.script_case, case_id)
        return case_id

    def replay_event(self, case_id: str, step: Step) -> str:
        self.raw.replay(self.script[step.index + 1], self.script_case, case_id)
        return case_id

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

    def run_raw(self, n: int, on_phase: Callable[[str], None] | None = None) -> Timing:
        return self.run(n, self.raw_create, self.raw_event, on_phase)

    def run_replay(self, n: int, on_phase: Callable[[str], None] | None = None) -> Timing:
        return self.run(n, self.replay_create, self.replay_event, on_phase)


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


PATHS = ("engine", "raw", "replay")
TARGETS = {"sqlite": 0.33, "postgres": 0.5}  # engine ÷ raw loop, issue 13


def count_statements(bench: Bench, cases_n: int = 3) -> dict[str, dict[str, str]]:
    """SQL statements per create and per event on each path, described as text: the
    engine's counted by a ``before_cursor_execute`` listener, the raw paths' by the
    driver wrapper that runs them."""
    out: dict[str, dict[str, str]] = {}
    counter = StatementCounter()
    event.listen(bench.engine, "before_cursor_execute", counter.before_cursor_execute)
    try:
        bench.run_engine(cases_n, counter.switch)
    finally:
        event.remove(bench.engine, "before_cursor_execute", counter.before_cursor_execute)
    out["engine"] = {
        "create": describe(counter.counts["create"], cases_n),
        "event": describe(counter.counts["event"], cases_n * len(bench.steps)),
    }
    for path, runner in (("raw", bench.run_raw), ("replay", bench.run_replay)):
        per = {"create": 0, "event": 0}
        at = {"phase": "create", "mark": bench.raw.statements}

        def switch(name: str, per: dict[str, int] = per, at: dict[str, Any] = at) -> None:
            per[at["phase"]] += bench.raw.statements - at["mark"]
            at["phase"], at["mark"] = name, bench.raw.statements

        runner(cases_n, switch)
        switch("create")  # closes the last phase
        out[path] = {
            "create": f"{per['create'] / cases_n:g}",
            "event": f"{per['event'] / (cases_n * len(bench.steps)):g}",
        }
    return out


def describe(counts: Counter[str], ops: int) -> str:
    parts = ", ".join(f"{n / ops:g} {verb}" for verb, n in sorted(counts.items()))
    return f"{sum(counts.values()) / ops:g} ({parts})"


# ---------------------------------------------------------------- measuring


@dataclass
class Result:
    backend: str
    runs: dict[str, list[Timing]]
    statements: dict[str, dict[str, str]]


def measure(bench: Bench, n: int, repeat: int) -> Result:
    runners = {"engine": bench.run_engine, "raw": bench.run_raw, "replay": bench.run_replay}
    for runner in runners.values():
        runner(WARMUP_CASES)
    statements = count_statements(bench)
    runs: dict[str, list[Timing]] = {path: [] for path in PATHS}
    for r in range(repeat):
        order = PATHS[r % len(PATHS) :] + PATHS[: r % len(PATHS)]  # rotate: drift hits all
        for path in order:
            runs[path].append(runners[path](n))
        print(
            f"  {bench.backend} repeat {r + 1}/{repeat}: "
            + ", ".join(f"{p} {runs[p][-1].rate('lifecycle'):,.0f} ops/s" for p in PATHS),
            file=sys.stderr,
            flush=True,
        )
    return Result(bench.backend, runs, statements)


def spread(values: Sequence[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"


def ratios(res: Result, phase: str, baseline: str) -> list[float]:
    eng = [t.rate(phase) for t in res.runs["engine"]]
    base = [t.rate(phase) for t in res.runs[baseline]]
    return [e / b for e, b in zip(eng, base, strict=True)]


def print_table(results: Sequence[Result], n: int, repeat: int, steps: int) -> None:
    ops = n * (steps + 1)
    print()
    print(
        f"gengbao event throughput: {n} cases × (create + {steps} events) = {ops} ops per run, "
        f"median of {repeat} (min–max)"
    )
    header = (
        f"{'backend':<15} {'phase':<9} {'engine ops/s':>20} {'raw loop ops/s':>22} "
        f"{'replay ops/s':>20} {'engine/raw':>17} {'engine/replay':>17} {'µs/op':>6}"
    )
    print(header)
    print("-" * len(header))
    for res in results:
        target = TARGETS["postgres" if res.backend == "postgres" else "sqlite"]
        for phase in PHASES:
            rates = {p: [t.rate(phase) for t in res.runs[p]] for p in PATHS}
            to_raw = ratios(res, phase, "raw")
            flag = "" if statistics.median(to_raw) >= target else " <"
            print(
                f"{res.backend:<15} {phase:<9} {spread(rates['engine'], ',.0f'):>20} "
                f"{spread(rates['raw'], ',.0f'):>22} {spread(rates['replay'], ',.0f'):>20} "
                f"{spread(to_raw, '.2f') + flag:>17} "
                f"{spread(ratios(res, phase, 'replay'), '.2f'):>17} "
                f"{statistics.median(t.us_per_op(phase) for t in res.runs['engine']):>6,.0f}"
            )
    print(
        "(engine/raw: engine ops/s ÷ the raw driver loop's; target ≥ "
        f"{TARGETS['sqlite']} on SQLite, ≥ {TARGETS['postgres']} on PostgreSQL; '<' marks a miss."
        " engine/replay: ÷ the engine's own SQL replayed through the raw driver)"
    )
    print()
    print("SQL statements per operation (BEGIN not counted; commit is not a statement):")
    for res in results:
        for path in PATHS:
            per = res.statements[path]
            print(f"  {res.backend:<15} {path:<7} create {per['create']:<34} event {per['event']}")


def record_figures(results: Sequence[Result], deployed: bool) -> None:
    """The headline figures for ``bench/run_all.py``: events/s against the raw loop."""
    what = "deployed event" if deployed else "core event"
    for res in results:
        target = TARGETS["postgres" if res.backend == "postgres" else "sqlite"]
        for baseline, label in (("raw", "raw driver loop"), ("replay", "raw replay of its SQL")):
            record(
                Figure(
                    bench="events",
                    name=f"{what}, {res.backend}",
                    value=statistics.median(t.rate("event") for t in res.runs["engine"]),
                    unit="ops/s",
                    baseline=label,
                    baseline_value=statistics.median(t.rate("event") for t in res.runs[baseline]),
                    ratio=statistics.median(ratios(res, "event", baseline)),
                    target=f"≥ {target}" if baseline == "raw" else "",
                )
            )
        per_event = res.statements["engine"]["event"].split()[0]
        record(
            Figure(
                bench="events",
                name=f"statements per {what}, {res.backend}",
                value=float(per_event),
                unit="statements",
                target="≤ 7" if deployed else "",
            )
        )


# ---------------------------------------------------------------- profiling

# (label, file suffix, qualified name): the phases of one operation.
BREAKDOWN: list[tuple[str, str, str]] = [
    ("whole operation (one transaction)", "engine/cases/service.py", "CaseService._idempotent"),
    ("  create body", "engine/cases/service.py", "CaseService._create"),
    ("  event body", "engine/cases/service.py", "CaseService._event"),
    ("catalog.latest (SQL)", "engine/cases/catalog.py", "Catalog.latest"),
    ("catalog.compiled (cached)", "engine/cases/catalog.py", "Catalog.compiled"),
    ("permission: CaseService._roles", "engine/cases/service.py", "CaseService._roles"),
    ("  roles cache: HeldRoles.of", "engine/grid/held.py", "HeldRoles.of"),
    ("machine options", "engine/definitions/compiler.py", "CompiledWorkflow.options"),
    ("machine fire", "engine/definitions/compiler.py", "CompiledWorkflow.fire"),
    ("validation: validate_data", "engine/definitions/values.py", "validate_data"),
    ("  _case_data", "engine/cases/service.py", "_case_data"),
    ("history: CaseService._record", "engine/cases/service.py", "CaseService._record"),
    ("  history.row_hash", "engine/cases/history.py", "row_hash"),
    ("timers: TimerSchedule.on_change", "engine/timers/schedule.py", "TimerSchedule.on_change"),
    (
        "outbox: TransitionNotifications",
        "notifications/outbox.py",
        "TransitionNotifications.on_change",
    ),
    ("prepared writes: Prepared.execute", "engine/store/prepared.py", "Prepared.execute"),
    ("  Prepared.executemany", "engine/store/prepared.py", "Prepared.executemany"),
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
        "--core",
        action="store_true",
        help="the engine without its timer and outbox effects (default: with them, as "
        "`gengbao serve` runs; the raw paths write what the engine wrote either way)",
    )
    parser.add_argument("--deployed", action="store_true", help=argparse.SUPPRESS)  # the default
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

    deployed = not args.core
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
    record_figures(results, deployed)
    for line in profiles:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
