"""Rows and bytes a farmland case leaves on PostgreSQL, per table (for sizing).

Usage::

    python bench/rows.py --postgres URL [--cases N]

Walks N farmland cases (default 200) through their whole lifecycle with the
effects ``gengbao`` runs with (timer rows, the notification outbox), on a fresh
schema ``bench_<random>`` as ``bench/events.py --deployed`` does, then runs
``ANALYZE`` and prints per table: rows per case, the mean row size
(``avg(pg_column_size(t.*))``, the tuple's data without its 24-byte header
and line pointer) and the table's whole size per case with its indexes and
TOAST (``pg_total_relation_size``; a table this small is mostly its first
pages, so read that column at several N).  Deliveries are not written: they
come from the dispatcher, which this does not run.  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/rows.py` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

from bench.events import postgres_bench  # noqa: E402

TABLES = ("cases", "history", "state_entries", "timers", "notifications", "id_counters")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--postgres", metavar="URL", required=True)
    parser.add_argument("--cases", type=int, default=200, help="cases (default 200)")
    args = parser.parse_args(argv)
    with postgres_bench(args.postgres, deployed=True) as bench:
        bench.run_engine(args.cases - 1)  # the bench made one case already
        n = args.cases
        with bench.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
            print(f"{n} cases, {len(bench.steps)} events each (deployed: timers and outbox)")
            print(f"{'table':<14} {'rows/case':>9} {'avg row B':>9} {'total B/case':>12}")
            whole = 0
            for table in TABLES:
                rows, avg, total = conn.exec_driver_sql(
                    f"SELECT count(*), coalesce(avg(pg_column_size(t.*)), 0), "
                    f"pg_total_relation_size('{table}') FROM {table} t"
                ).one()
                whole += total
                print(f"{table:<14} {rows / n:9.2f} {float(avg):9.0f} {total / n:12.0f}")
            print(f"{'all':<14} {'':>9} {'':>9} {whole / n:12.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
