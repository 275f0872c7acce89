"""Assigning satellite spots (卫片图斑) to the villages that contain them.

Usage::

    python bench/spots.py [--villages 10000] [--spots 20000] [--repeat 3]

A synthetic province-sized grid near Chongqing: a district split into towns,
each town into a square block of villages (irregular five-sided boundaries, so
the index works on real polygons, not boxes), V villages in all; S spots,
four in five small polygons (a house plot, ~20–60 m across) and one in five
points, scattered over the district.  Timed:

- **index**: building the :class:`engine.geo.locate.UnitLocator` (STRtree over
  every unit boundary);
- **assign**: ``locate_many`` for all spots (lowest unit containing or
  overlapping most);
- **baseline**: the same rule by brute force — each spot tested against every
  village boundary with shapely's vectorized ``intersects`` — on a sample of
  spots, scaled to S (measured in the same run).

Prints medians of R rounds and the speed-up of the index over brute force;
checks that both give the same villages on the sample.  Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import math
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
if str(ROOT) not in sys.path:  # `python bench/spots.py` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

from bench.figures import Figure, record  # noqa: E402
from engine.geo.locate import UnitLocator, UnitShape  # noqa: E402

WEST, SOUTH = 106.2, 29.2  # the district's south-west corner (lng, lat)
VILLAGE_DEG = 0.01  # a village cell ~1 km across
SAMPLE = 400  # spots the brute-force baseline checks


def grid(villages: int, rng: random.Random) -> list[UnitShape]:
    side = math.ceil(math.sqrt(villages))
    per_town = max(1, side // 10)  # 10 × 10 towns
    units = [UnitShape("d", 0, _box(0, 0, side, side))]
    for tx in range(0, side, per_town):
        for ty in range(0, side, per_town):
            units.append(UnitShape(f"t{tx}-{ty}", 1, _box(tx, ty, per_town, per_town)))
    count = 0
    for x in range(side):
        for y in range(side):
            if count == villages:
                break
            units.append(UnitShape(f"v{x}-{y}", 2, _village(x, y, rng)))
            count += 1
    return units


def _box(x: int, y: int, w: int, h: int) -> shapely.Polygon:
    x0, y0 = WEST + x * VILLAGE_DEG, SOUTH + y * VILLAGE_DEG
    return shapely.box(x0, y0, x0 + w * VILLAGE_DEG, y0 + h * VILLAGE_DEG)


def _village(x: int, y: int, rng: random.Random) -> shapely.Polygon:
    """A five-sided cell: the square with one edge bent outward a little."""
    x0, y0 = WEST + x * VILLAGE_DEG, SOUTH + y * VILLAGE_DEG
    d = VILLAGE_DEG
    bend = rng.uniform(0.0, 0.15) * d
    return shapely.Polygon(
        [(x0, y0), (x0 + d, y0), (x0 + d + bend, y0 + d / 2), (x0 + d, y0 + d), (x0, y0 + d)]
    )


def spots(count: int, side: int, rng: random.Random) -> list[BaseGeometry]:
    out: list[BaseGeometry] = []
    span = side * VILLAGE_DEG
    for i in range(count):
        x, y = WEST + rng.uniform(0, span), SOUTH + rng.uniform(0, span)
        if i % 5 == 0:
            out.append(shapely.Point(x, y))
        else:
            size = rng.uniform(0.0002, 0.0006)  # ~20–60 m
            out.append(shapely.box(x, y, x + size, y + size * rng.uniform(0.5, 1.5)))
    return out


def brute_force(villages: Sequence[UnitShape], sample: Sequence[BaseGeometry]) -> list[str]:
    """The villages the rule picks, by testing every village boundary for each spot."""
    shapes = np.array([v.boundary for v in villages], dtype=object)
    codes = [v.code for v in villages]
    picked: list[str] = []
    for spot in sample:
        hit = np.nonzero(shapely.intersects(shapes, spot))[0]
        if hit.size == 0:
            picked.append("")
            continue
        overlap = shapely.area(shapely.intersection(shapes[hit], spot))
        # the largest overlap, then the smaller code (points: every overlap is 0)
        picked.append(min(zip(-overlap, (codes[i] for i in hit), strict=True))[1])
    return picked


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--villages", type=int, default=10_000)
    parser.add_argument("--spots", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", help="ignored: the lookup runs in memory")
    args = parser.parse_args(argv)
    rng = random.Random(20261202)
    units = grid(args.villages, rng)
    villages = [u for u in units if u.depth == 2]
    side = math.ceil(math.sqrt(args.villages))
    found = spots(args.spots, side, rng)
    sample = found[:SAMPLE]

    index_s: list[float] = []
    assign_s: list[float] = []
    brute_s: list[float] = []
    for _ in range(args.repeat):
        t0 = perf_counter()
        locator = UnitLocator(units)
        t1 = perf_counter()
        assigned = locator.locate_many(found)
        t2 = perf_counter()
        expected = brute_force(villages, sample)
        t3 = perf_counter()
        index_s.append(t1 - t0)
        assign_s.append(t2 - t1)
        brute_s.append((t3 - t2) * args.spots / len(sample))
        if [a or "" for a in assigned[: len(sample)]] != expected:
            print("the index and brute force disagree on the sample", file=sys.stderr)
            return 1
    index, assign, brute = (statistics.median(x) for x in (index_s, assign_s, brute_s))
    rate = args.spots / assign
    print(
        f"gengbao spot assignment: {args.spots:,} spots onto {len(villages):,} villages "
        f"(+ {len(units) - len(villages):,} towns and district), median of {args.repeat}"
    )
    print(f"{'step':<40}{'seconds':>10}{'spots/s':>12}")
    print("-" * 62)
    print(f"{'build the index (STRtree)':<40}{index:>10.3f}{'':>12}")
    print(f"{'assign with the index':<40}{assign:>10.3f}{rate:>12,.0f}")
    print(f"{'brute force (sample, scaled)':<40}{brute:>10.3f}{args.spots / brute:>12,.0f}")
    print(f"index ÷ brute force: {brute / assign:,.0f}× faster; same villages on {SAMPLE} spots")
    record(
        Figure(
            "spots",
            f"assign {args.spots:,} spots to {len(villages):,} villages",
            round(index + assign, 3),
            "s",
            "brute force, scaled",
            round(brute, 1),
            round((index + assign) / brute, 4),
            "seconds",
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
