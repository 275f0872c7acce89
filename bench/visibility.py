"""The price of the visibility rule: a page of ``list_cases`` per viewer, on SQLite.

Usage::

    python bench/visibility.py [--cases N] [--repeat R]

Opens one farmland case through the service, then clones it in bulk (one
``executemany``) to N cases spread over every group of the demo grid.  Times a
first page (50) and a walk of every page for the administrator, a district
leader (sees everything through the rule), a member of one town (八桥镇) and a
group member (one group), and prints the median milliseconds and the ratio to the
administrator's, who skips the rule.  Nothing is asserted: the machine may be
shared and noisy, so read medians and ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/visibility.py` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from engine.app import App  # noqa: E402
from engine.cases.service import CaseFilter  # noqa: E402
from engine.clock import FixedClock  # noqa: E402
from engine.grid.visibility import ADMIN, Viewer  # noqa: E402
from engine.settings import Settings  # noqa: E402
from engine.store.tables import cases, units  # noqa: E402
from tests.support.farmland import CASE_DATA, GRID_FILE, REPORTER, UNIT, WORKFLOW_FILE  # noqa: E402

VIEWERS = {
    "administrator": ADMIN,
    "district leader": Viewer("p-ddk-leader"),
    "town member": Viewer("p-bq-xh-leader"),  # 新华村's leader, a member of 八桥镇
    "group member": Viewer(REPORTER),
}


def seed(app: App, n: int) -> None:
    first = app.cases.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA).id
    with app.engine.begin() as conn:
        row = dict(conn.execute(sa.select(cases).where(cases.c.id == first)).one()._mapping)
        groups = list(
            conn.execute(sa.select(units.c.code).where(units.c.level == "group")).scalars()
        )
        clones = [
            {**row, "id": f"C20990101-{i:06d}", "unit_code": groups[i % len(groups)]}
            for i in range(n - 1)
        ]
        conn.execute(sa.insert(cases), clones)


def timed(work: Callable[[], int], repeat: int) -> tuple[float, int]:
    times, found = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        found = work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        settings = Settings(database_url=url, workflows_dir=Path("workflows"))
        app = App(settings, FixedClock(datetime(2026, 9, 18, 2, tzinfo=UTC)))
        app.grid.load(GRID_FILE)
        app.catalog.register_file(WORKFLOW_FILE)
        seed(app, args.cases)
        page = CaseFilter(limit=50)
        print(f"{args.cases} cases on SQLite; median of {args.repeat} (ms)")
        head = f"{'viewer':<16} {'first page':>11} {'ratio':>6} {'all pages':>10} {'ratio':>6}"
        print(f"{head} cases")
        base: tuple[float, float] | None = None
        for name, viewer in VIEWERS.items():

            def first(viewer: Viewer = viewer) -> int:
                return len(app.cases.list_cases(page, viewer=viewer))

            def walk(viewer: Viewer = viewer) -> int:
                seen: list[str] = []
                while True:
                    got = app.cases.list_cases(
                        replace(page, limit=1000, after=seen[-1] if seen else None), viewer=viewer
                    )
                    seen += [v.id for v in got]
                    if len(got) < 1000:
                        return len(seen)

            one, _ = timed(first, args.repeat)
            every, count = timed(walk, args.repeat)
            base = base or (one, every)
            print(
                f"{name:<16} {one:>11.1f} {one / base[0]:>6.2f} {every:>10.1f} "
                f"{every / base[1]:>6.2f} {count}"
            )
        app.close()


if __name__ == "__main__":
    main()
