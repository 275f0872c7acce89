"""Every benchmark, one after another, and one table of their headline figures.

Usage::

    python bench/run_all.py [--postgres URL] [--quick] [--only NAME ...]

Runs each benchmark below as its own process (its full output goes to
standard error, as it prints it), with ``GENGBAO_BENCH_FIGURES`` naming a
file where each one records its headline figures (:mod:`bench.figures`), then
prints one table: figure, value, the baseline measured in the same run, the
ratio and the target.  ``--postgres`` (default: ``$GENGBAO_TEST_POSTGRES_URL``)
adds the PostgreSQL runs of the benchmarks that have them.  ``--quick`` uses
smaller sizes (a smoke run, minutes); the default sizes take longer.  Nothing
here asserts a speed: the machine may be shared and noisy; read the ratios.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/run_all.py` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

from bench.figures import ENV, Figure, read  # noqa: E402

PG_ENV = "GENGBAO_TEST_POSTGRES_URL"


@dataclass(frozen=True)
class Benchmark:
    name: str
    script: str
    full: tuple[str, ...]  # arguments of a default run
    quick: tuple[str, ...]  # arguments of a --quick run
    postgres: bool = True  # takes --postgres URL


BENCHMARKS = [
    Benchmark(
        "events",
        "events.py",
        ("--cases", "100", "--repeat", "5", "--sqlite-synchronous", "normal"),
        ("--cases", "20", "--repeat", "3", "--sqlite-synchronous", "normal"),
    ),
    Benchmark(
        "imports",
        "imports.py",
        ("--cases", "20000", "--repeat", "3"),
        ("--cases", "5000", "--repeat", "1"),
    ),
    Benchmark(
        "timers",
        "timers.py",
        ("--pending", "10000,100000", "--due", "2000", "--repeat", "3"),
        ("--pending", "10000", "--due", "1000", "--repeat", "1", "--cases", "100"),
    ),
    Benchmark(
        "api",
        "api.py",
        ("--cases", "40", "--repeat", "3"),
        ("--cases", "16", "--repeat", "1"),
    ),
    Benchmark(
        "spots",
        "spots.py",
        ("--villages", "10000", "--spots", "20000", "--repeat", "3"),
        ("--villages", "2500", "--spots", "5000", "--repeat", "1"),
        postgres=False,
    ),
    Benchmark("memory", "memory.py", (), ("--seconds", "2"), postgres=False),
    Benchmark("cli", "cli.py", ("--runs", "20"), ("--runs", "5"), postgres=False),
]


def run(bench: Benchmark, args: argparse.Namespace, figures: str) -> int:
    script = ROOT / "bench" / bench.script
    if not script.exists():
        print(f"run_all: {bench.script} is not there; skipped", file=sys.stderr)
        return 0
    command = [sys.executable, str(script), *(bench.quick if args.quick else bench.full)]
    if bench.postgres and args.postgres:
        command += ["--postgres", args.postgres]
    print(f"\n$ {' '.join(command)}", file=sys.stderr, flush=True)
    done = subprocess.run(
        command, stdout=sys.stderr, env={**os.environ, ENV: figures}, cwd=ROOT, check=False
    )
    if done.returncode != 0:
        print(f"run_all: {bench.name} exited {done.returncode}", file=sys.stderr)
    return done.returncode


def number(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
    return f"{text} {unit}".strip()


def print_table(figures: Sequence[Figure]) -> None:
    rows = [
        (
            f.bench,
            f.name,
            number(f.value, f.unit),
            f"{f.baseline}: {number(f.baseline_value, f.unit)}" if f.baseline else "",
            "" if f.ratio is None else f"{f.ratio:.2f}",
            f.target,
        )
        for f in figures
    ]
    header = ("bench", "figure", "value", "baseline (same run)", "ratio", "target")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--postgres", metavar="URL", default=os.environ.get(PG_ENV))
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=[b.name for b in BENCHMARKS])
    args = parser.parse_args(argv)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="gengbao-bench-") as folder:
        figures = str(Path(folder) / "figures.jsonl")
        Path(figures).touch()
        for bench in BENCHMARKS:
            if args.only and bench.name not in args.only:
                continue
            failed += run(bench, args, figures) != 0
        print()
        print(
            "gengbao benchmarks: headline figures (medians; ratios to a baseline of the same run)"
        )
        print_table(read(figures))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
