"""Which unit a point or polygon belongs to, through a spatial index.

The rule: the geometry belongs to the **lowest level** of the grid where it
touches a unit's boundary, and at that level to the unit that **contains it, or
overlaps it most** (a point on a shared border goes to the smaller code, so
the answer never depends on the order units were loaded).  Units without a
boundary are simply not candidates: a spot in a town whose villages have no
boundary yet goes to the town.

An STRtree (shapely) answers the bounding-box candidates for a whole batch in
one call; the exact tests and the overlap areas are vectorized too, so a batch
of tens of thousands of spots over a province's villages takes seconds
(``bench/spots.py``).  Overlaps are compared in square degrees: within one
place that ranks like square metres (:mod:`engine.geo.area` gives those).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

__all__ = ["UnitLocator", "UnitShape"]


@dataclass(frozen=True)
class UnitShape:
    code: str
    depth: int  # 0 = district, deeper = lower (the grid's units.depth)
    boundary: BaseGeometry


class UnitLocator:
    def __init__(self, units: Sequence[UnitShape]) -> None:
        self.codes = [u.code for u in units]
        self.depths = np.array([u.depth for u in units], dtype=np.int64)
        rank = {code: i for i, code in enumerate(sorted(self.codes))}
        self.code_rank = np.array([rank[c] for c in self.codes], dtype=np.int64)
        self.shapes = np.array([u.boundary for u in units], dtype=object)
        shapely.prepare(self.shapes)
        self.tree = shapely.STRtree(self.shapes)

    def __len__(self) -> int:
        return len(self.codes)

    def locate(self, geom: BaseGeometry) -> str | None:
        """The unit *geom* belongs to, or None when it touches no boundary."""
        return self.locate_many([geom])[0]

    def locate_many(self, geoms: Sequence[BaseGeometry]) -> list[str | None]:
        """:meth:`locate` for each of *geoms*, in order, in one index query."""
        found: list[str | None] = [None] * len(geoms)
        if not geoms or not self.codes:
            return found
        inputs = np.array(geoms, dtype=object)
        which, unit = self.tree.query(inputs, predicate="intersects")
        if which.size == 0:
            return found
        overlap = np.zeros(which.size)
        areal = shapely.area(inputs[which]) > 0
        if areal.any():
            overlap[areal] = shapely.area(
                shapely.intersection(inputs[which[areal]], self.shapes[unit[areal]])
            )
        # Per input: the deepest level first, then the largest overlap, then the smaller code.
        order = np.lexsort((self.code_rank[unit], -overlap, -self.depths[unit], which))
        first = np.ones(order.size, dtype=bool)
        first[1:] = which[order][1:] != which[order][:-1]
        for i, u in zip(which[order][first], unit[order][first], strict=True):
            found[int(i)] = self.codes[int(u)]
        return found
