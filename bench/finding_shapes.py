"""Matching survey findings to cases by shape: "found by the grid" when they intersect.

Usage::

    python bench/finding_shapes.py [--cases 20000] [--findings 10000] [--repeat 3]

A synthetic district near Chongqing (as ``bench/spots.py``): C cases, four in
five with a spot outline (a small polygon, ~20–60 m across) and one in five
with a ``location`` point; F findings, polygons of the same size, half of them
drawn over a case (so about half are found), scattered over ~100 km × 100 km.
Every case is a candidate of every finding (the worst case: the database's
unit-subtree narrowing is left out).  Timed:

- **match**: :func:`engine.assessment.overlaps.intersecting` — one STRtree over
  the cases' shapes, queried with every prepared finding at once;
- **baseline**: each finding tested against every case shape with shapely's
  vectorized ``intersects``, on a sample of findings, scaled to F.

Prints medians of R rounds and the speed-up of the index; checks both give the
same pairs on the sample.  Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from time import perf_counter

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/finding_shapes.py` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

from engine.assessment.overlaps import intersecting  # noqa: E402

WEST, SOUTH, SPAN = 106.2, 29.2, 1.0  # ~100 km square
SAMPLE = 300  # findings the brute-force baseline checks


def _plot(rng: random.Random, x: float, y: float) -> BaseGeometry:
    size = rng.uniform(0.0002, 0.0006)  # ~20–60 m
    return shapely.box(x, y, x + size, y + size * rng.uniform(0.5, 1.5))


def cases(count: int, rng: random.Random) -> dict[str, list[BaseGeometry]]:
    out: dict[str, list[BaseGeometry]] = {}
    for i in range(count):
        x, y = WEST + rng.uniform(0, SPAN), SOUTH + rng.uniform(0, SPAN)
        shape = shapely.Point(x, y) if i % 5 == 0 else _plot(rng, x, y)
        out[f"C{i:06d}"] = [shape]
    return out


def findings(
    count: int, known: dict[str, list[BaseGeometry]], rng: random.Random
) -> dict[int, BaseGeometry]:
    shapes = [s for found in known.values() for s in found]
    out: dict[int, BaseGeometry] = {}
    for i in range(count):
        if i % 2 == 0:  # drawn over a case: its corner inside the case's bounds
            minx, miny, maxx, maxy = shapes[rng.randrange(len(shapes))].bounds
            x, y = rng.uniform(minx, maxx) - 0.0001, rng.uniform(miny, maxy) - 0.0001
        else:
            x, y = WEST + rng.uniform(0, SPAN), SOUTH + rng.uniform(0, SPAN)
        out[i + 1] = _plot(rng, x, y)
    return out


class Everything:
    """Every (finding, case) pair is a candidate."""

    def __contains__(self, pair: object) -> bool:
        return True


def brute_force(
    sample: dict[int, BaseGeometry], known: dict[str, list[BaseGeometry]]
) -> list[list[object]]:
    owners = [c for c, found in known.items() for _ in found]
    shapes = np.array([s for found in known.values() for s in found], dtype=object)
    pairs: set[tuple[int, str]] = set()
    for fid, shape in sample.items():
        for k in np.nonzero(shapely.intersects(shapes, shape))[0]:
            pairs.add((fid, owners[int(k)]))
    return [[f, c] for f, c in sorted(pairs)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--findings", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    rng = random.Random(20261202)
    known = cases(args.cases, rng)
    found = findings(args.findings, known, rng)
    every = Everything()  # every case a candidate of every finding: no unit narrowing
    sample = dict(list(found.items())[:SAMPLE])
    match_s: list[float] = []
    brute_s: list[float] = []
    pairs: list[list[object]] = []
    for _ in range(args.repeat):
        t0 = perf_counter()
        pairs = intersecting(found, known, every)
        t1 = perf_counter()
        expected = brute_force(sample, known)
        t2 = perf_counter()
        match_s.append(t1 - t0)
        brute_s.append((t2 - t1) * args.findings / len(sample))
        if [p for p in pairs if int(str(p[0])) <= SAMPLE] != expected:
            print("the index and brute force disagree on the sample", file=sys.stderr)
            return 1
    match, brute = statistics.median(match_s), statistics.median(brute_s)
    hit = len({p[0] for p in pairs})
    print(
        f"gengbao findings by shape: {args.findings:,} findings against {args.cases:,} cases, "
        f"median of {args.repeat}; {hit:,} findings found"
    )
    print(f"{'step':<40}{'seconds':>10}{'findings/s':>12}")
    print("-" * 62)
    print(f"{'match with the STRtree':<40}{match:>10.3f}{args.findings / match:>12,.0f}")
    print(f"{'brute force (sample, scaled)':<40}{brute:>10.3f}{args.findings / brute:>12,.0f}")
    print(f"index ÷ brute force: {brute / match:,.0f}× faster; same pairs on {SAMPLE} findings")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
