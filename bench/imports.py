"""Bulk case import: ``create_cases`` in process, the whole CLI, and a raw executemany.

Usage::

    python bench/imports.py [--cases N] [--repeat R] [--postgres URL] [--no-cli]

Generates N (default 20,000) valid farmland cases spread over every group of
the demo grid, opened by the district office (which may open a case anywhere),
and prints, as medians over R runs on a fresh database each:

- ``create_cases`` in process (the case service's bulk create), cases/s, and the
  SQL statements it issued per batch of 1,000 (a ``before_cursor_execute``
  listener);
- the whole CLI process, ``.venv/bin/gengbao case import`` on a JSON Lines file
  (start-up, parsing, checks, writes), wall time and cases/s;
- the baseline: the very rows the import wrote (cases, history, state_entries,
  timers, outbox, the id counter), read back and inserted again into a fresh
  database with the driver's own ``executemany`` (sqlite3; psycopg with
  ``--postgres``) in one transaction — the database's share of the work;

and the ratios.  SQLite runs on a WAL file with gengbao's pragmas
(``synchronous=FULL``); ``--postgres`` runs in a fresh schema per run, dropped at
the end.  Nothing is asserted: the machine may be shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/imports.py` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.figures import Figure, record  # noqa: E402
from engine.app import App  # noqa: E402
from engine.cases.batch import BATCH_ROWS, NewCase  # noqa: E402
from engine.clock import FixedClock  # noqa: E402
from engine.grid.registry import load_grid  # noqa: E402
from engine.settings import Settings  # noqa: E402
from engine.store.db import make_engine, upgrade  # noqa: E402
from engine.store.tables import (  # noqa: E402
    cases,
    history,
    id_counters,
    idempotency,
    notifications,
    state_entries,
    timers,
    units,
)
from tests.support.farmland import GRID_FILE, START, WORKFLOW_FILE  # noqa: E402

WORKFLOW = "farmland_violation"
ACTOR = "p-ddk-office1"  # the district office: may open a case on every group
GENGBAO = ROOT / ".venv" / "bin" / "gengbao"
WRITTEN = (cases, history, state_entries, timers, notifications, idempotency, id_counters)
LAND = ("永久基本农田", "一般耕地", "其他")
SOURCES = ("村级巡查", "镇级巡查", "卫片图斑", "12345热线")


def groups(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        found = conn.execute(sa.select(units.c.code).where(units.c.level == "group"))
        return sorted(found.scalars())


def items(n: int, codes: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "unit": codes[i % len(codes)],
            "data": {
                "address": f"第 {i} 号图斑旁",
                "land_type": LAND[i % len(LAND)],
                "area_m2": (i * 37) % 20000,
                "source": SOURCES[i % len(SOURCES)],
            },
            "key": f"bench-{i}",
        }
        for i in range(n)
    ]


class Backend:
    """Fresh seeded databases of one kind, and a raw driver insert into them."""

    name = ""

    def fresh(self) -> str:
        raise NotImplementedError

    def drop(self, url: str) -> None:
        raise NotImplementedError

    def raw_insert(
        self, url: str, rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]]
    ) -> float:
        raise NotImplementedError


def seed(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
        load_grid(engine, GRID_FILE)
    finally:
        engine.dispose()
    app = App(Settings(database_url=url, workflows_dir=ROOT / "workflows"), FixedClock(START))
    try:
        app.catalog.register_file(WORKFLOW_FILE)
    finally:
        app.close()


class SQLiteBackend(Backend):
    name = "sqlite"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.template = folder / "template.db"
        seed(f"sqlite:///{self.template}")
        self.n = 0

    def fresh(self) -> str:
        self.n += 1
        path = self.folder / f"run{self.n}.db"
        shutil.copyfile(self.template, path)
        return f"sqlite:///{path}"

    def drop(self, url: str) -> None:
        path = Path(url.removeprefix("sqlite:///"))
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            p.unlink(missing_ok=True)

    def raw_insert(
        self, url: str, rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]]
    ) -> float:
        con = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        for pragma in ("journal_mode = WAL", "synchronous = FULL", "foreign_keys = ON"):
            con.execute(f"PRAGMA {pragma}")
        start = time.perf_counter()
        con.execute("BEGIN IMMEDIATE")
        for table, (names, values) in rows.items():
            marks = ", ".join("?" for _ in names)
            verb = "INSERT OR REPLACE" if table == "id_counters" else "INSERT"
            con.executemany(f"{verb} INTO {table} ({', '.join(names)}) VALUES ({marks})", values)
        con.execute("COMMIT")
        elapsed = time.perf_counter() - start
        con.close()
        return elapsed


class PostgresBackend(Backend):
    name = "postgres"

    def __init__(self, base: str) -> None:
        from tests.support.databases import PostgresSchemas

        self.schemas = PostgresSchemas(base)

    def fresh(self) -> str:
        url = self.schemas.create("bench")
        seed(url)
        return url

    def drop(self, url: str) -> None:
        self.schemas.drop(url)

    def raw_insert(
        self, url: str, rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]]
    ) -> float:
        import psycopg
        from psycopg.types.json import Jsonb

        engine = make_engine(url)  # for its search_path; the inserts go through psycopg itself
        try:
            raw = engine.raw_connection()
            conn = raw.driver_connection
            assert isinstance(conn, psycopg.Connection)
            json_columns = {"data", "payload", "response", "context", "roles"}
            start = time.perf_counter()
            with conn.cursor() as cur:
                for table, (names, values) in rows.items():
                    where = [i for i, n in enumerate(names) if n in json_columns]
                    prepared = [
                        tuple(Jsonb(v) if i in where else v for i, v in enumerate(row))
                        for row in values
                    ]
                    marks = ", ".join("%s" for _ in names)
                    tail = (
                        " ON CONFLICT (prefix, day) DO UPDATE SET last = EXCLUDED.last"
                        if table == "id_counters"
                        else ""
                    )
                    cur.executemany(
                        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks}){tail}", prepared
                    )
            conn.commit()
            elapsed = time.perf_counter() - start
            raw.close()
            return elapsed
        finally:
            engine.dispose()

    def close(self) -> None:
        self.schemas.close()


def dump(url: str) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """The rows an import wrote, as the driver stores them (for the raw baseline)."""
    engine = make_engine(url)
    out: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    try:
        with engine.connect() as conn:
            driver = conn.connection.driver_connection
            for table in WRITTEN:
                names = [c.name for c in table.columns]
                if table is timers or table is notifications:
                    names = [n for n in names if n != "id"]
                cur = driver.cursor()  # type: ignore[union-attr]
                cur.execute(f"SELECT {', '.join(names)} FROM {table.name}")
                values = [tuple(r) for r in cur.fetchall()]
                if engine.dialect.name == "postgresql":
                    values = [
                        tuple(
                            json.loads(json.dumps(v)) if isinstance(v, (dict, list)) else v
                            for v in r
                        )
                        for r in values
                    ]
                out[table.name] = (names, values)
    finally:
        engine.dispose()
    return out


def count_statements(engine: sa.Engine) -> Callable[[], int]:
    seen = [0]

    @sa.event.listens_for(engine, "before_cursor_execute")
    def counted(*_: Any) -> None:
        seen[0] += 1

    return lambda: seen[0]


def in_process(url: str, wanted: list[dict[str, Any]]) -> tuple[float, int]:
    app = App(Settings(database_url=url, workflows_dir=ROOT / "workflows"), FixedClock(START))
    try:
        statements = count_statements(app.engine)
        batch = [
            NewCase(line=i, unit=w["unit"], data=w["data"], key=w["key"])
            for i, w in enumerate(wanted, start=1)
        ]
        before = statements()
        start = time.perf_counter()
        result = app.cases.create_cases(WORKFLOW, batch, ACTOR)
        elapsed = time.perf_counter() - start
        assert result.written == len(wanted), result.problems[:3]
        return elapsed, statements() - before
    finally:
        app.close()


def whole_cli(url: str, file: Path, n: int) -> float:
    env = {**os.environ, "GENGBAO_DATABASE_URL": url}
    start = time.perf_counter()
    done = subprocess.run(
        [str(GENGBAO), "--now", START.isoformat(), "case", "import", WORKFLOW, str(file),
         "--actor", ACTOR, "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the CLI import failed ({done.returncode}): {done.stderr[-2000:]}")
    written = json.loads(done.stdout)["written"]
    assert written == n, written
    return elapsed


def run(backend: Backend, n: int, repeat: int, cli: bool, folder: Path) -> None:
    probe = backend.fresh()
    wanted = items(n, groups(make_engine(probe)))
    backend.drop(probe)
    file = folder / "cases.jsonl"
    file.write_text(
        "".join(json.dumps(w, ensure_ascii=False) + "\n" for w in wanted), encoding="utf-8"
    )
    engine_s: list[float] = []
    cli_s: list[float] = []
    raw_s: list[float] = []
    statements = 0
    for _ in range(repeat):
        url = backend.fresh()
        seconds, statements = in_process(url, wanted)
        engine_s.append(seconds)
        rows = dump(url)
        backend.drop(url)
        url = backend.fresh()
        raw_s.append(backend.raw_insert(url, rows))
        backend.drop(url)
        if cli:
            url = backend.fresh()
            cli_s.append(whole_cli(url, file, n))
            backend.drop(url)
    batches = -(-n // BATCH_ROWS)
    timer_rows = len(rows["timers"][1])
    e, r = statistics.median(engine_s), statistics.median(raw_s)
    print(f"\n{backend.name}: {n:,} cases ({timer_rows:,} timer rows), median of {repeat}")
    print(f"  create_cases in process  {e:7.3f} s  {n / e:9,.0f} cases/s  ({e / r:.1f}× raw)")
    per = statements / batches
    print(f"    SQL statements: {statements} in all, {per:.1f} per batch of {BATCH_ROWS}")
    if cli_s:
        c = statistics.median(cli_s)
        print(f"  whole CLI process        {c:7.3f} s  {n / c:9,.0f} cases/s  ({c / r:.1f}× raw)")
    print(f"  raw driver executemany   {r:7.3f} s  {n / r:9,.0f} cases/s  (1.0×)")
    base = {"unit": "cases/s", "baseline": "raw executemany", "baseline_value": n / r}
    record(
        Figure(
            bench="imports",
            name=f"{n:,} cases in process, {backend.name}",
            value=n / e,
            ratio=r / e,
            target="≥ 20,000 cases/s" if backend.name == "sqlite" else "",
            **base,  # type: ignore[arg-type]
        )
    )
    if cli_s:
        record(
            Figure(
                bench="imports",
                name=f"{n:,} cases, whole CLI process, {backend.name}",
                value=n / c,
                ratio=r / c,
                target="≥ 0.1 (within 10× of raw)",
                **base,  # type: ignore[arg-type]
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", metavar="URL", help="also on PostgreSQL (fresh schemas)")
    parser.add_argument("--no-cli", dest="cli", action="store_false", help="skip the CLI process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gengbao-bench-") as tmp:
        folder = Path(tmp)
        run(SQLiteBackend(folder), args.cases, args.repeat, args.cli, folder)
        if args.postgres:
            pg = PostgresBackend(args.postgres)
            try:
                run(pg, args.cases, args.repeat, args.cli, folder)
            finally:
                pg.close()


if __name__ == "__main__":
    main()
