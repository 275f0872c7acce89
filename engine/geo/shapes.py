"""GeoJSON geometries, checked before shapely sees them.

Accepted: a GeoJSON ``Point``, ``Polygon`` or ``MultiPolygon`` object, or a
``Feature`` holding one (its ``properties`` are ignored).  Positions are
``[longitude, latitude]`` (a third value, the height, is allowed and ignored);
rings must have at least four positions and end where they start; a polygon
must be valid (no self-intersection, holes inside their shell).  A legacy
``crs`` member may name WGS-84 (``EPSG:4326``, ``CRS84``) or CGCS2000
(``EPSG:4490``); any other datum is refused rather than silently misread.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from engine.errors import InvalidGeometry

__all__ = ["GEOMETRY_TYPES", "as_geojson", "parse_geometry"]

GEOMETRY_TYPES = ("Point", "Polygon", "MultiPolygon")
# EPSG:4326 / EPSG:4490 in any spelling (``urn:ogc:def:crs:EPSG::4490``), or OGC CRS84.
ACCEPTED_CRS = re.compile(r"(EPSG:+(4326|4490)|CRS84)$", re.IGNORECASE)
MAX_POSITIONS = 200_000  # a village boundary has hundreds; a runaway file is refused


def parse_geometry(value: Any, where: str = "geometry") -> BaseGeometry:
    """The shapely geometry of GeoJSON *value*; :class:`InvalidGeometry` naming *where*."""
    if not isinstance(value, Mapping):
        raise InvalidGeometry(where, f"expected a GeoJSON object, got {_kind(value)}")
    if value.get("type") == "Feature":
        _check_crs(value, where)
        return parse_geometry(value.get("geometry"), f"{where}.geometry")
    _check_crs(value, where)
    kind = value.get("type")
    if kind not in GEOMETRY_TYPES:
        raise InvalidGeometry(
            f"{where}.type",
            f"expected one of {', '.join(GEOMETRY_TYPES)} (or a Feature holding one), got {kind!r}",
        )
    coords = value.get("coordinates")
    path = f"{where}.coordinates"
    counter = [0]
    if kind == "Point":
        point = _position(coords, path, counter)
        return shapely.Point(point)
    if kind == "Polygon":
        rings = _polygon(coords, path, counter)
        geom: BaseGeometry = shapely.Polygon(rings[0], rings[1:])
    else:
        if not isinstance(coords, list) or not coords:
            raise InvalidGeometry(path, "a MultiPolygon needs a non-empty list of polygons")
        parts = [_polygon(p, f"{path}[{i}]", counter) for i, p in enumerate(coords)]
        geom = shapely.MultiPolygon([(rings[0], rings[1:]) for rings in parts])
    if not geom.is_valid:
        raise InvalidGeometry(where, f"not a valid {kind}: {explain_validity(geom)}")
    return geom


def as_geojson(geom: BaseGeometry) -> dict[str, Any]:
    """*geom* as a GeoJSON geometry object (for the API and exports)."""
    plain: dict[str, Any] = _lists(shapely.geometry.mapping(geom))
    return plain


def _check_crs(value: Mapping[str, Any], where: str) -> None:
    crs = value.get("crs")
    if crs is None:
        return
    name = crs.get("properties", {}).get("name") if isinstance(crs, Mapping) else None
    text = str(name or "")
    if not ACCEPTED_CRS.search(text):
        raise InvalidGeometry(
            f"{where}.crs",
            f"coordinates must be longitude/latitude on WGS-84 or CGCS2000 "
            f"(EPSG:4326 or EPSG:4490), got {text or crs!r}",
        )


def _polygon(value: Any, path: str, counter: list[int]) -> list[list[tuple[float, float]]]:
    if not isinstance(value, list) or not value:
        raise InvalidGeometry(path, "a polygon needs a non-empty list of rings (shell first)")
    return [_ring(ring, f"{path}[{i}]", counter) for i, ring in enumerate(value)]


def _ring(value: Any, path: str, counter: list[int]) -> list[tuple[float, float]]:
    if not isinstance(value, list):
        raise InvalidGeometry(path, f"a ring is a list of positions, got {_kind(value)}")
    ring = [_position(p, f"{path}[{i}]", counter) for i, p in enumerate(value)]
    if len(ring) < 4:
        raise InvalidGeometry(
            path, f"a ring needs at least 4 positions (first = last), got {len(ring)}"
        )
    if ring[0] != ring[-1]:
        raise InvalidGeometry(
            path,
            f"the ring is not closed: it starts at {list(ring[0])} and ends at "
            f"{list(ring[-1])}; repeat the first position at the end",
        )
    return ring


def _position(value: Any, path: str, counter: list[int]) -> tuple[float, float]:
    counter[0] += 1
    if counter[0] > MAX_POSITIONS:
        raise InvalidGeometry(path, f"more than {MAX_POSITIONS} positions")
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) not in (2, 3)
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise InvalidGeometry(path, f"a position is [longitude, latitude], got {value!r}")
    lng, lat = float(value[0]), float(value[1])
    if not (math.isfinite(lng) and math.isfinite(lat)):
        raise InvalidGeometry(path, f"a position must be finite, got {value!r}")
    if not -180 <= lng <= 180:
        raise InvalidGeometry(path, f"longitude {lng} is outside -180..180")
    if not -90 <= lat <= 90:
        hint = " (is it [latitude, longitude]? GeoJSON is [longitude, latitude])"
        raise InvalidGeometry(
            path, f"latitude {lat} is outside -90..90{hint if -90 <= lng <= 90 else ''}"
        )
    return lng, lat


def _lists(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
