"""CLI start-up: whole ``gengbao`` processes against a bare ``python -c pass``.

Usage::

    python bench/cli.py [--runs N] [--warmup W]

Runs each command N times as a subprocess of the virtual environment's
interpreter, in turn with the baseline (command, baseline, command, …), and
prints per command the median wall and CPU milliseconds (user + system of the
finished child), the same for the baseline, and the median of the pair-by-pair
ratios (pairs keep the ratio fair when the machine's speed drifts).  The
commands: ``gengbao --help`` (builds the whole parser: every command module is
imported) and ``gengbao validate workflows/farmland_violation.yaml`` (reads the
settings, checks one workflow and its templates).  Nothing is asserted: the
machine may be shared and noisy, so read medians and ratios.

The children run with ``PYTHONDONTWRITEBYTECODE`` removed from their
environment, so the warm-up runs leave ``.pyc`` files as an installed package
has them (``pip install`` compiles its modules); with it set, every run would
compile the project's modules from source again.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/cli.py` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

from bench.figures import Figure, record  # noqa: E402

GENGBAO = Path(sys.executable).parent / "gengbao"
BASELINE = [sys.executable, "-c", "pass"]
COMMANDS = {
    "gengbao --help": [str(GENGBAO), "--help"],
    "gengbao validate workflows/farmland_violation.yaml": [
        str(GENGBAO),
        "validate",
        "workflows/farmland_violation.yaml",
    ],
}


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float


CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(argv: list[str]) -> Run:
    """One whole process: wall seconds, and the child's own user + system seconds."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(
        argv,
        cwd=ROOT,
        env=CHILD_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return Run(wall, cpu)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each command (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="uncounted runs first (default 2)")
    args = parser.parse_args()
    if not GENGBAO.exists():
        sys.exit(f"{GENGBAO} not found: run this with the virtual environment's python")
    print(f"{args.runs} runs each, in turn with `python -c pass`; medians, milliseconds")
    print(
        f"{'command':<52} {'wall':>7} {'cpu':>7}   {'base wall':>9} {'base cpu':>8}"
        f"   {'× wall':>6} {'× cpu':>6}"
    )
    for name, argv in COMMANDS.items():
        for _ in range(args.warmup):
            run(argv)
            run(BASELINE)
        pairs = [(run(argv), run(BASELINE)) for _ in range(args.runs)]
        a = [p[0] for p in pairs]
        b = [p[1] for p in pairs]
        wall_ratio = statistics.median(x.wall / y.wall for x, y in pairs)
        # CPU of a bare interpreter can read 0 at the clock's granularity: ratio of medians.
        cpu_base = statistics.median(y.cpu for y in b)
        cpu_ratio = statistics.median(x.cpu for x in a) / cpu_base if cpu_base else float("nan")
        print(
            f"{name:<52} {ms(statistics.median(x.wall for x in a))} "
            f"{ms(statistics.median(x.cpu for x in a))}   "
            f"{ms(statistics.median(y.wall for y in b)):>9} {ms(cpu_base):>8}   "
            f"{wall_ratio:6.1f} {cpu_ratio:6.1f}"
        )
        record(
            Figure(
                bench="cli",
                name=f"start-up, {name.split(' workflows/')[0]}",
                value=statistics.median(x.wall for x in a) * 1000,
                unit="ms",
                baseline="python -c pass",
                baseline_value=statistics.median(y.wall for y in b) * 1000,
                ratio=wall_ratio,
                target="well under 200 ms",
            )
        )


if __name__ == "__main__":
    main()
