"""Geometry: GeoJSON checked with the member named, areas on the ellipsoid, unit lookup."""

from __future__ import annotations

import math
from typing import Any

import pytest
import shapely

from engine.errors import InvalidGeometry
from engine.geo.area import area_m2
from engine.geo.locate import UnitLocator, UnitShape
from engine.geo.shapes import as_geojson, parse_geometry
from tests.support.geometry import square

# -- checking ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "where", "fragment"),
    [
        ("POINT(1 2)", "spot", "expected a GeoJSON object, got str"),
        ({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, "spot.type", "LineString"),
        ({"type": "Point", "coordinates": [29.5, 106.5]}, "spot.coordinates", "latitude 106.5"),
        ({"type": "Point", "coordinates": [181, 0]}, "spot.coordinates", "longitude 181.0"),
        ({"type": "Point", "coordinates": ["106.5", 29.5]}, "spot.coordinates", "[longitude,"),
        ({"type": "Point", "coordinates": [float("nan"), 29.5]}, "spot.coordinates", "finite"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]},
            "spot.coordinates[0]",
            "not closed",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]},
            "spot.coordinates[0]",
            "at least 4 positions",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
            "spot",
            "Self-intersection",
        ),
        ({"type": "MultiPolygon", "coordinates": []}, "spot.coordinates", "non-empty"),
        (
            {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon"}},
            "spot.geometry.coordinates",
            "non-empty list of rings",
        ),
        (
            {**square(0, 0, 1), "crs": {"type": "name", "properties": {"name": "EPSG:4547"}}},
            "spot.crs",
            "EPSG:4547",
        ),
    ],
)
def test_a_bad_geometry_is_refused_naming_where(value: Any, where: str, fragment: str) -> None:
    with pytest.raises(InvalidGeometry) as caught:
        parse_geometry(value, "spot")
    assert caught.value.where == where
    assert fragment in caught.value.problem


def test_accepted_forms_round_trip_as_geojson() -> None:
    feature = {
        "type": "Feature",
        "properties": {"图斑编号": "500104-2026-0001"},
        "geometry": square(106.5, 29.5, 0.01),
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}},
    }
    polygon = parse_geometry(feature)
    assert as_geojson(polygon) == {
        "type": "Polygon",
        "coordinates": [
            [[106.5, 29.5], [106.51, 29.5], [106.51, 29.51], [106.5, 29.51], [106.5, 29.5]]
        ],
    }
    point = parse_geometry({"type": "Point", "coordinates": [106.5, 29.5, 310.0]})
    assert isinstance(point, shapely.Point)
    assert (point.x, point.y) == (106.5, 29.5)
    multi = parse_geometry(
        {
            "type": "MultiPolygon",
            "coordinates": [square(0, 0, 1)["coordinates"], square(2, 0, 1)["coordinates"]],
        }
    )
    assert isinstance(multi, shapely.MultiPolygon)
    assert len(multi.geoms) == 2


# -- areas ------------------------------------------------------------------------


def test_area_is_geodesic_square_metres() -> None:
    # One degree square at the equator on GRS 80: 12,308.78 km² (a planar formula in
    # degrees would say 1.0).  At 60°–61° north the sphere's formula R²·Δλ·(sin φ2 − sin φ1)
    # gives about half; the ellipsoid's answer lies within 1 % of it.
    assert area_m2(parse_geometry(square(0, 0, 1))) == pytest.approx(12_308.78e6, rel=1e-5)
    north = area_m2(parse_geometry(square(0, 60, 1)))
    sphere = (
        6_371_007.2**2 * math.radians(1) * (math.sin(math.radians(61)) - math.sin(math.radians(60)))
    )
    assert north == pytest.approx(sphere, rel=0.01)
    assert area_m2(parse_geometry({"type": "Point", "coordinates": [1, 1]})) == 0


def test_a_hole_subtracts() -> None:
    shell = square(106.5, 29.5, 0.002)["coordinates"][0]
    hole = square(106.5005, 29.5005, 0.001)["coordinates"][0][::-1]
    with_hole = area_m2(parse_geometry({"type": "Polygon", "coordinates": [shell, hole]}))
    whole = area_m2(parse_geometry({"type": "Polygon", "coordinates": [shell]}))
    inner = area_m2(parse_geometry({"type": "Polygon", "coordinates": [hole]}))
    assert with_hole == pytest.approx(whole - inner, rel=1e-9)


# -- which unit ---------------------------------------------------------------------

# A district 2°×1°, two towns side by side, the west town with two villages; the east
# town's villages have no boundary yet.
UNITS = [
    UnitShape(
        "d",
        0,
        parse_geometry(
            square(0, 0, 2).copy() | {"coordinates": [[[0, 0], [2, 0], [2, 1], [0, 1], [0, 0]]]}
        ),
    ),
    UnitShape("t-west", 1, parse_geometry(square(0, 0, 1))),
    UnitShape("t-east", 1, parse_geometry(square(1, 0, 1))),
    UnitShape(
        "v-a",
        2,
        parse_geometry(
            {"type": "Polygon", "coordinates": [[[0, 0], [0.5, 0], [0.5, 1], [0, 1], [0, 0]]]}
        ),
    ),
    UnitShape(
        "v-b",
        2,
        parse_geometry(
            {"type": "Polygon", "coordinates": [[[0.5, 0], [1, 0], [1, 1], [0.5, 1], [0.5, 0]]]}
        ),
    ),
]


@pytest.mark.parametrize(
    ("geometry", "unit"),
    [
        ({"type": "Point", "coordinates": [0.2, 0.5]}, "v-a"),  # inside a village
        ({"type": "Point", "coordinates": [1.5, 0.5]}, "t-east"),  # its villages have no boundary
        ({"type": "Point", "coordinates": [0.5, 0.5]}, "v-a"),  # on the shared border: smaller code
        ({"type": "Point", "coordinates": [3, 3]}, None),  # outside the district
        (square(0.4, 0.2, 0.3), "v-b"),  # straddles: 0.1 in v-a, 0.2 in v-b
        (square(0.1, 0.1, 0.2), "v-a"),  # inside v-a
        (square(0.9, 0.2, 0.3), "v-b"),  # straddles two towns: the lowest level it touches wins
    ],
)
def test_a_geometry_goes_to_the_lowest_unit_that_holds_or_overlaps_it_most(
    geometry: dict[str, Any], unit: str | None
) -> None:
    locator = UnitLocator(UNITS)
    assert locator.locate(parse_geometry(geometry)) == unit


def test_many_at_once_match_one_by_one_and_keep_order() -> None:
    locator = UnitLocator(list(reversed(UNITS)))  # the load order does not matter
    spots = [shapely.Point(0.1 + 0.37 * i % 2.2, 0.05 + 0.13 * i % 1.1) for i in range(200)]
    assert locator.locate_many(spots) == [locator.locate(s) for s in spots]
    assert UnitLocator([]).locate_many(spots[:3]) == [None, None, None]
