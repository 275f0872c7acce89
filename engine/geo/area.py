"""Areas on the ellipsoid: square metres of a lng/lat polygon, as surveyors count them."""

from __future__ import annotations

from pyproj import Geod
from shapely.geometry.base import BaseGeometry

__all__ = ["MU_M2", "area_m2"]

# CGCS2000's ellipsoid and GRS 80 differ in the flattening's 11th digit; WGS-84's by
# 0.1 mm in the semi-minor axis: one ellipsoid serves all three datums.
_GEOD = Geod(ellps="GRS80")
MU_M2 = 10_000 / 15  # 1 亩 = 666.67 m²


def area_m2(geom: BaseGeometry) -> float:
    """The geodesic area of *geom* in m² (0 for a point); holes subtract."""
    area, _perimeter = _GEOD.geometry_area_perimeter(geom)
    return abs(float(area))
