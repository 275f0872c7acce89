"""``timers recompute`` cost against the number of open cases whose deadline moves.

Usage::

    python bench/recompute.py [--cases 100,500] [--postgres URL]

For each size N, a fresh database (SQLite: a WAL file in a temporary folder;
PostgreSQL: a fresh schema ``benchrecompute_<random>``, dropped at the end)
gets the demo grid, the farmland workflow and N real cases walked by the case
service into ``joint_enforcement`` (10 working days, 5 pending timers each) on
2026-12-24, with no 2027 data.  Then ``calendars/2027.yaml`` makes 2027-01-01
and 01-04..08 holidays and a new :class:`~engine.app.App` (a restart) runs:

* dry run: ``recompute.run(dry_run=True)`` — reads only;
* run: ``recompute.run()`` — one transaction per case: lock, history entry,
  timers moved and re-pointed;
* again: a second run, which moves nothing.

Printed: wall time, ms per case, and the ratio of ms per case at the largest
N to the smallest (≈ 1.0: the cost follows the cases, one transaction each).
Nothing here asserts a speed; the machine may be shared and noisy.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
import tempfile
import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from time import perf_counter
from zoneinfo import ZoneInfo

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/recompute.py` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

from engine.app import App  # noqa: E402
from engine.clock import FixedClock  # noqa: E402
from engine.settings import Settings  # noqa: E402
from engine.store.db import make_engine, normalize_url  # noqa: E402
from tests.support.farmland import CASE_DATA, LIFECYCLE, REPORTER, UNIT, farmland_app  # noqa: E402

SH = ZoneInfo("Asia/Shanghai")
ENTERED = datetime(2026, 12, 24, 10, 0, tzinfo=SH)
HOLIDAYS = """\
    days:
      - {date: 2027-01-01, working: false}
      - {from: 2027-01-04, to: 2027-01-08, working: false}
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(url: str, n: int, folder: Path) -> dict[str, float]:
    (folder / "calendars").mkdir(parents=True)
    config = folder / "gengbao.yaml"
    config.write_text(f"workflows_dir: {ROOT / 'workflows'}\n", encoding="utf-8")
    clock = FixedClock(ENTERED)
    app: App = farmland_app(url, clock, source=config)
    for _ in range(n):
        case_id = app.cases.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA).id
        for trigger, actor, payload, _ in LIFECYCLE[:3]:
            app.cases.submit_event(case_id, trigger, actor, payload)
    app.close()
    (folder / "calendars" / "2027.yaml").write_text(textwrap.dedent(HOLIDAYS), encoding="utf-8")
    clock.set(ENTERED + timedelta(days=4))
    restarted = App(Settings(database_url=url, source=config), clock)
    out: dict[str, float] = {}
    try:
        for phase, dry in (("dry run", True), ("run", False), ("again", False)):
            start = perf_counter()
            result = restarted.recompute.run(dry_run=dry)
            out[phase] = perf_counter() - start
            out[f"{phase} moved"] = result.cases_moved
    finally:
        restarted.close()
    return out


def postgres_schema(base: str) -> tuple[str, sa.Engine, str]:
    admin = make_engine(base).execution_options(isolation_level="AUTOCOMMIT")
    name = f"benchrecompute_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    url = normalize_url(base).update_query_dict({"options": f"-csearch_path={name}"})
    return url.render_as_string(hide_password=False), admin.engine, name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="100,500", help="comma-separated sizes")
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # "no arrangement for 2027": once per case created
    sizes = [int(s) for s in args.cases.split(",")]
    backends = ["sqlite"] + (["postgres"] if args.postgres else [])
    print("| backend | cases | dry run s (ms/case) | run s (ms/case) | again s | moved |")
    print("|---|---|---|---|---|---|")
    for backend in backends:
        per_case: list[float] = []
        for n in sizes:
            with tempfile.TemporaryDirectory() as tmp:
                if backend == "sqlite":
                    r = measure(f"sqlite:///{tmp}/bench.db", n, Path(tmp))
                else:
                    url, admin, schema = postgres_schema(args.postgres)
                    try:
                        r = measure(url, n, Path(tmp))
                    finally:
                        with admin.connect() as conn:
                            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
                        admin.dispose()
            per_case.append(r["run"] / n * 1000)
            print(
                f"| {backend} | {n} | {r['dry run']:.2f} ({r['dry run'] / n * 1000:.1f}) "
                f"| {r['run']:.2f} ({r['run'] / n * 1000:.1f}) | {r['again']:.2f} "
                f"| {int(r['run moved'])} then {int(r['again moved'])} |",
                flush=True,
            )
        if len(per_case) > 1:
            ratio = per_case[-1] / per_case[0]
            log(f"{backend}: ms/case at {sizes[-1]} ÷ at {sizes[0]}: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
