"""Memory of a process running the sweep loop, with 10k against 100k open cases.

Usage::

    python bench/memory.py [--cases 10000,100000] [--seconds 5] [--due 500]

For each size N a fresh SQLite database is migrated, gets the demo grid and
the farmland workflow, and one case made by the case service; that case is
then cloned N − 1 times by one ``INSERT … SELECT`` (same state and revision,
new ids), and every case gets six pending timers due 1 to 30 days ahead (one
more ``INSERT … SELECT``).  ``--due`` of them get one more timer each (a
deadline) falling due during the run, so the loop really fires.

A child process (``python bench/memory.py --child URL …``, so nothing of
the build is in its memory) builds the :class:`~engine.app.App`, starts a real
:class:`~engine.timers.SweepLoop` on a clock that runs in real time from the
cases' timeline, lets it run ``--seconds`` s, and reports its resident set
(``VmRSS``) after start-up and at the end, and its peak (``VmHWM``), in MB.
The property: nothing is held per case or per timer, so the figures at 100k
are those at 10k, give or take the noise of the allocator (the difference is
printed).  Nothing here asserts anything.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter, sleep
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/memory.py` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

from bench.figures import Figure, record  # noqa: E402

T0 = datetime(2026, 9, 18, 2, 0, tzinfo=UTC)  # the cases open here
RUN_FROM = T0 + timedelta(minutes=10)  # the child's clock starts here and runs in real time


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sqlite_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


CLONE_CASES = """
WITH RECURSIVE cnt(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM cnt WHERE n + 1 < :count)
INSERT INTO cases (id, workflow, definition_id, state, unit_code, data, revision,
                   escalation_level, opened_at, state_entered_at, closed_at, deadline_at,
                   head_hash, updated_at, created_by)
SELECT printf('M%08d', cnt.n), c.workflow, c.definition_id, c.state, c.unit_code, c.data,
       c.revision, c.escalation_level, c.opened_at, c.state_entered_at, c.closed_at,
       c.deadline_at, c.head_hash, c.updated_at, c.created_by
FROM cnt, cases c WHERE c.id = :seed
"""

TIMERS_PER_CASE = """
WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < 6)
INSERT INTO timers (case_id, state, case_revision, kind, rung, deadline_at, due_at,
                    repeat_seconds, status, created_at)
SELECT c.id, c.state, c.revision,
       CASE k.i WHEN 0 THEN 'deadline' WHEN 5 THEN 'escalation' ELSE 'reminder' END,
       CASE k.i WHEN 5 THEN 0 END,
       strftime('%Y-%m-%d %H:%M:%S', :far, '+' || (30 * 86400) || ' seconds') || '.000000',
       strftime('%Y-%m-%d %H:%M:%S', :far,
                '+' || (abs(random()) % (29 * 86400)) || ' seconds') || '.000000',
       NULL, 'pending', :created
FROM cases c, k WHERE c.id LIKE 'M%'
"""

DUE_DURING_RUN = """
INSERT INTO timers (case_id, state, case_revision, kind, rung, deadline_at, due_at,
                    repeat_seconds, status, created_at)
SELECT c.id, c.state, c.revision, 'deadline', NULL, :due, :due, NULL, 'pending', :created
FROM cases c WHERE c.id LIKE 'M%' ORDER BY c.id LIMIT :n
"""


def build(path: Path, n: int, due: int) -> float:
    """A database with *n* open cases, 6 far timers each, *due* due during the run."""
    from sqlalchemy import text

    from engine.app import App
    from engine.clock import FixedClock
    from engine.grid.registry import load_grid
    from tests.support.farmland import CASE_DATA, GRID_FILE, REPORTER, UNIT, WORKFLOW_FILE

    started = perf_counter()
    app = App(settings_for(f"sqlite:///{path}"), FixedClock(T0))
    try:
        load_grid(app.engine, GRID_FILE)
        workflow = app.catalog.register_file(WORKFLOW_FILE).workflow
        seed = app.cases.create_case(workflow, UNIT, REPORTER, CASE_DATA).id
        with app.engine.begin() as conn:
            conn.execute(text(CLONE_CASES), {"count": n, "seed": seed})
            conn.execute(text("DELETE FROM timers WHERE case_id = :seed"), {"seed": seed})
            far = (T0 + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
            conn.execute(text(TIMERS_PER_CASE), {"far": far, "created": sqlite_text(T0)})
            # One more timer for the first *due* cases, due 1 s into the child's run.
            at = sqlite_text(RUN_FROM + timedelta(seconds=1))
            conn.execute(text(DUE_DURING_RUN), {"due": at, "created": sqlite_text(T0), "n": due})
    finally:
        app.close()
    return perf_counter() - started


def settings_for(url: str) -> Any:
    from engine.settings import Settings

    return Settings(
        database_url=url,
        workflows_dir=ROOT / "workflows",
        source=ROOT / "config" / "gengbao.yaml",
    )


# ---------------------------------------------------------------- the child


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    return float("nan")


class RunningClock:
    def __init__(self, epoch: datetime) -> None:
        self.epoch = epoch
        self.started = perf_counter()

    def now(self) -> datetime:
        return self.epoch + timedelta(seconds=perf_counter() - self.started)


def child(url: str, seconds: float) -> int:
    import threading

    from sqlalchemy import func, select

    from engine.app import App
    from engine.store.tables import cases, timers
    from engine.timers import SweepLoop

    app = App(settings_for(url), RunningClock(RUN_FROM))
    with app.engine.connect() as conn:
        open_cases = conn.execute(
            select(func.count()).select_from(cases).where(cases.c.closed_at.is_(None))
        ).scalar_one()
        pending = conn.execute(
            select(func.count()).select_from(timers).where(timers.c.status == "pending")
        ).scalar_one()
    fired = 0
    lock = threading.Lock()

    def count(n: int) -> None:
        nonlocal fired
        with lock:
            fired += max(n, 0)

    loop = SweepLoop(app.timers, 1.0, after_sweep=count)
    loop.start()
    try:
        sleep(0.5)  # the first sweep and plan (a bench measures time; a test never sleeps)
        started_mb = status_mb("VmRSS")
        sleep(seconds)
    finally:
        loop.stop()
    result = {
        "open_cases": open_cases,
        "pending": pending,
        "fired": fired,
        "sweeps": loop.sweeps,
        "rss_start_mb": started_mb,
        "rss_end_mb": status_mb("VmRSS"),
        "peak_mb": status_mb("VmHWM"),
    }
    app.close()
    print(json.dumps(result))
    return 0


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cases", default="10000,100000", help="sizes (default 10000,100000)")
    parser.add_argument("--seconds", type=float, default=5.0, help="loop run (default 5)")
    parser.add_argument("--due", type=int, default=500, help="timers due during the run")
    parser.add_argument("--child", nargs=2, metavar=("URL", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child[0], float(args.child[1]))
    sizes = [int(v) for v in args.cases.split(",") if v.strip()]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gengbao-bench-memory-") as folder:
        for n in sizes:
            path = Path(folder) / f"cases{n}.db"
            log(f"building {n:,} open cases in {build(path, n, min(args.due, n)):.1f} s")
            done = subprocess.run(
                [sys.executable, __file__, "--child", f"sqlite:///{path}", str(args.seconds)],
                capture_output=True,
                text=True,
                check=True,
            )
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            log(f"  {results[-1]}")
    print()
    print(
        f"RSS of a process running the sweep loop for {args.seconds:g} s "
        f"(SQLite; VmRSS after start-up and at the end, VmHWM peak)"
    )
    header = (
        f"{'open cases':>10} {'pending timers':>14} {'fired':>6} {'sweeps':>7} "
        f"{'RSS start MB':>12} {'RSS end MB':>11} {'peak MB':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['open_cases']:>10,} {r['pending']:>14,} {r['fired']:>6,} {r['sweeps']:>7,} "
            f"{r['rss_start_mb']:>12.1f} {r['rss_end_mb']:>11.1f} {r['peak_mb']:>8.1f}"
        )
    if len(results) >= 2:
        small, large = results[0], results[-1]
        extra = max(1, large["open_cases"] - small["open_cases"])
        grown = large["rss_end_mb"] - small["rss_end_mb"]
        print(
            f"{large['open_cases']:,} vs {small['open_cases']:,} open cases: RSS at the end "
            f"{grown:+.1f} MB, peak {large['peak_mb'] - small['peak_mb']:+.1f} MB "
            f"({grown * 1024 * 1024 / extra:+.1f} bytes per extra case)"
        )
        record(
            Figure(
                bench="memory",
                name=f"sweep loop RSS, {large['open_cases']:,} open cases",
                value=large["rss_end_mb"],
                unit="MB",
                baseline=f"{small['open_cases']:,} open cases",
                baseline_value=small["rss_end_mb"],
                ratio=large["rss_end_mb"] / small["rss_end_mb"],
                target="flat (within a few MB)",
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
