"""Headline figures of a benchmark, collected by ``bench/run_all.py`` into one table.

A benchmark calls :func:`record` for each figure worth a line in the summary
(its median, the baseline measured in the same run, their ratio).  When the
environment names a file in ``GENGBAO_BENCH_FIGURES`` (``run_all.py`` does), each
figure is appended to it as one JSON line; otherwise nothing happens, so a
benchmark run by hand prints only its own tables.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

__all__ = ["ENV", "Figure", "read", "record"]

ENV = "GENGBAO_BENCH_FIGURES"


@dataclass(frozen=True)
class Figure:
    bench: str  # which benchmark: events, imports, timers, api, cli, ...
    name: str  # what was measured, e.g. "event, sqlite"
    value: float
    unit: str  # "ops/s", "ms", "MB", ...
    baseline: str = ""  # what it is compared with, e.g. "raw sqlite3 loop"
    baseline_value: float | None = None
    ratio: float | None = None  # value ÷ baseline_value (or as the bench defines it)
    target: str = ""  # the goal, e.g. "≥ 0.33"


def record(figure: Figure) -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(asdict(figure), ensure_ascii=False) + "\n")


def read(path: str) -> list[Figure]:
    with open(path, encoding="utf-8") as lines:
        return [Figure(**json.loads(line)) for line in lines if line.strip()]
