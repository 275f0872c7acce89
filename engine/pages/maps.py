"""Maps drawn on the server: unit boundaries and case shapes as one inline SVG.

No tile server, no JavaScript, no CDN: the pages' Content-Security-Policy allows
none of them, and a duty officer's phone may be on a poor network.  :func:`svg_map`
takes the shapes to draw (shapely geometries or GeoJSON objects, ``[longitude,
latitude]`` on WGS-84 / CGCS2000), fits the bounding box of all of them into a
fixed ``viewBox`` and returns the ``<svg>`` as :class:`~markupsafe.Markup`, ready
for a template:

* the projection is equirectangular around the middle latitude — longitudes are
  multiplied by ``cos(latitude)`` so a square village is drawn square, not
  squashed — and one scale for both axes keeps the aspect ratio; the drawing is
  centred, with a margin, and north is up;
* a unit (:class:`UnitArea`) is a ``<g class="unit …">`` with its name as the
  ``<title>`` (a tooltip, and what a screen reader says) and its polygons,
  optionally linking somewhere (the board links a unit to its drill-down);
* a case (:class:`CaseMark`) is an ``<a href="/ui/cases/{id}">`` with the case id
  as its ``<title>``: an outline is a polygon, a point a circle; an outline too
  small to tap at this scale gets a circle on it as well;
* everything shown is escaped (a unit named ``<script>`` is text), colours come
  from CSS classes of ``pages.css`` (and a few presentation attributes as the
  fallback), never from ``style=`` attributes; the SVG is ``width="100%"``, so it
  fits a 360 px phone without scrolling sideways.

Polygons are simplified after projecting (to half a unit of the viewBox, far
below a pixel on a phone), so a boundary of thousands of vertices stays small.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import shapely
from markupsafe import Markup, escape
from shapely.geometry.base import BaseGeometry

from engine.errors import InvalidGeometry
from engine.geo.shapes import parse_geometry

__all__ = [
    "HEIGHT",
    "WIDTH",
    "CaseMark",
    "Projection",
    "UnitArea",
    "as_shape",
    "projection",
    "svg_map",
]

WIDTH = 1000.0  # the viewBox: 4:3, wide enough for a phone held upright or a desktop
HEIGHT = 750.0
MARGIN = 24.0  # viewBox units kept free around the drawing
MIN_SPAN = 0.002  # degrees (about 200 m): the least extent drawn, so one point has a map
POINT_RADIUS = 14.0  # a case point, in viewBox units (about 5 px on a 360 px phone)
LABEL_SIZE = 34.0  # a unit's name, in viewBox units (about 12 px on a 360 px phone)
SIMPLIFY = 0.5  # viewBox units


@dataclass(frozen=True)
class UnitArea:
    """A unit's boundary to draw: its code and name, a CSS class (the board's overdue
    band: ``none``/``some``/``many``), and where a tap on it leads (or nowhere)."""

    code: str
    name: str
    shape: BaseGeometry | Mapping[str, Any]
    css: str = ""
    href: str | None = None


@dataclass(frozen=True)
class CaseMark:
    """A case's shape (an outline or a point) linking to its page; ``css`` such as
    ``overdue``."""

    case_id: str
    shape: BaseGeometry | Mapping[str, Any] | Sequence[float]  # a point field: [lng, lat]
    css: str = ""


@dataclass(frozen=True)
class Projection:
    """Longitude/latitude to viewBox coordinates: ``x = (lng - west) · cos(lat0) · scale
    + dx``, ``y = (north - lat) · scale + dy`` — one scale for both axes."""

    west: float
    north: float
    kx: float  # cos(lat0): a degree of longitude against a degree of latitude
    scale: float
    dx: float
    dy: float

    def point(self, lng: float, lat: float) -> tuple[float, float]:
        return (
            (lng - self.west) * self.kx * self.scale + self.dx,
            (self.north - lat) * self.scale + self.dy,
        )

    def shape(self, geom: BaseGeometry) -> BaseGeometry:
        """*geom* in viewBox coordinates (every vertex at once)."""
        return shapely.transform(geom, self._coords)

    def _coords(self, coords: Any) -> Any:
        out = coords.copy()
        out[:, 0] = (coords[:, 0] - self.west) * self.kx * self.scale + self.dx
        out[:, 1] = (self.north - coords[:, 1]) * self.scale + self.dy
        return out


def as_shape(value: BaseGeometry | Mapping[str, Any] | Sequence[float]) -> BaseGeometry | None:
    """A shapely geometry of *value* — a geometry, a GeoJSON object, or a ``[lng, lat]``
    pair (a ``point`` field) — or None when it is not a usable shape."""
    if isinstance(value, BaseGeometry):
        return None if value.is_empty else value
    if isinstance(value, Mapping):
        try:
            return parse_geometry(value)
        except InvalidGeometry:
            return None  # checked when written; an unusable one is not drawn
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        lng, lat = float(value[0]), float(value[1])
        if -180 <= lng <= 180 and -90 <= lat <= 90:
            return shapely.Point(lng, lat)
    return None


def projection(bounds: tuple[float, float, float, float]) -> Projection:
    """The projection fitting *bounds* (west, south, east, north in degrees) into the
    viewBox less its margin, centred; a box smaller than :data:`MIN_SPAN` is widened
    around its centre (a single point gets a map of about 200 m)."""
    west, south, east, north = bounds
    if north - south < MIN_SPAN:
        mid = (north + south) / 2
        south, north = mid - MIN_SPAN / 2, mid + MIN_SPAN / 2
    kx = math.cos(math.radians((north + south) / 2))
    if (east - west) * kx < MIN_SPAN:
        mid = (east + west) / 2
        west, east = mid - MIN_SPAN / kx / 2, mid + MIN_SPAN / kx / 2
    wide, high = (east - west) * kx, north - south
    scale = min((WIDTH - 2 * MARGIN) / wide, (HEIGHT - 2 * MARGIN) / high)
    return Projection(
        west=west,
        north=north,
        kx=kx,
        scale=scale,
        dx=(WIDTH - wide * scale) / 2,
        dy=(HEIGHT - high * scale) / 2,
    )


def svg_map(
    units: Iterable[UnitArea],
    cases: Iterable[CaseMark],
    *,
    label: str = "地图",
    names: bool = False,
) -> Markup | None:
    """The ``<svg>`` drawing *units* (below) and *cases* (on top), fitted to all of
    them, *label* its accessible name; with *names*, each unit's name is written
    inside it (the board's map).  None when there is nothing to draw."""
    drawn_units = [(u, s) for u in units if (s := as_shape(u.shape)) is not None]
    drawn_cases = [(c, s) for c in cases if (s := as_shape(c.shape)) is not None]
    shapes = [s for _, s in drawn_units] + [s for _, s in drawn_cases]
    if not shapes:
        return None
    box = shapely.GeometryCollection(shapes).bounds
    proj = projection((box[0], box[1], box[2], box[3]))
    parts = [
        f'<svg class="map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH:g} {HEIGHT:g}"'
        ' width="100%" preserveAspectRatio="xMidYMid meet"'
        f' role="img" aria-label="{escape(label)}">',
        '<g class="units" fill="#eef3e8" stroke="#5d7f4c" stroke-width="2">',
    ]
    for unit, shape in drawn_units:
        parts.append(_unit(unit, proj.shape(shape)))
    if names:
        parts.append(f'</g><g class="labels" text-anchor="middle" font-size="{LABEL_SIZE:g}">')
        for unit, shape in drawn_units:
            parts.append(_label(unit, proj.shape(shape)))
    parts.append('</g><g class="cases" fill="#c0392b" stroke="#ffffff" stroke-width="2">')
    for case, shape in drawn_cases:
        parts.append(_case(case, proj.shape(shape)))
    parts.append("</g></svg>")
    return Markup("".join(parts))


def _unit(unit: UnitArea, shape: BaseGeometry) -> str:
    body = f"<title>{escape(unit.name)}</title>{_polygons(shape)}"
    group = f'<g class="{_classes("unit", unit.css)}" data-unit="{escape(unit.code)}">{body}</g>'
    if unit.href is None:
        return group
    return f'<a href="{escape(unit.href)}">{group}</a>'


def _label(unit: UnitArea, shape: BaseGeometry) -> str:
    """The unit's name at a point inside it (below the cases: a case stays tappable)."""
    at = shape.representative_point()
    return f'<text x="{at.x:.1f}" y="{at.y + LABEL_SIZE / 3:.1f}">{escape(unit.name)}</text>'


def _case(case: CaseMark, shape: BaseGeometry) -> str:
    href = "/ui/cases/" + quote(case.case_id, safe="")
    inner = f"<title>{escape(case.case_id)}</title>"
    if shape.geom_type in ("Point", "MultiPoint"):
        inner += "".join(_circle(p.x, p.y) for p in getattr(shape, "geoms", [shape]))
    else:
        inner += _polygons(shape)
        x0, y0, x1, y1 = shape.bounds
        if max(x1 - x0, y1 - y0) < 2 * POINT_RADIUS:  # too small to see or tap: mark it
            centre = shape.representative_point()
            inner += _circle(centre.x, centre.y)
    return (
        f'<a href="{escape(href)}" class="{_classes("case", case.css)}"'
        f' data-case="{escape(case.case_id)}">{inner}</a>'
    )


def _circle(x: float, y: float) -> str:
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{POINT_RADIUS:g}"/>'


def _polygons(shape: BaseGeometry) -> str:
    """Each polygon of *shape* (already projected) as ``<polygon>``, or as an even-odd
    ``<path>`` when it has holes; other kinds of geometry are not drawn."""
    simple = shapely.simplify(shape, SIMPLIFY, preserve_topology=True)
    out = []
    for poly in getattr(simple, "geoms", [simple]):
        if poly.geom_type != "Polygon" or poly.is_empty:
            continue
        if not poly.interiors:
            out.append(f'<polygon points="{_points(poly.exterior.coords)}"/>')
        else:
            rings = [poly.exterior, *poly.interiors]
            d = " ".join(f"M{_points(r.coords)}Z" for r in rings)
            out.append(f'<path fill-rule="evenodd" d="{d}"/>')
    return "".join(out)


def _points(coords: Iterable[Any]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y, *_ in coords)


def _classes(kind: str, extra: str) -> str:
    return str(escape(f"{kind} {extra}".strip()))
