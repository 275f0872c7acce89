"""Satellite spots from GeoJSON: each feature a case, placed by the grid's boundaries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.definitions.model import FieldSpec
from engine.definitions.values import check_value, normalize
from tests.support.databases import Database
from tests.support.geometry import square
from tests.test_cases_cli import run

WORKFLOW = """\
workflow: spots
title: 卫片图斑核查
initial: checking
timezone: Asia/Shanghai
roles: [village.leader, town.office]
fields:
  spot_id: {type: string, required: true, title: 图斑编号}
  outline: {type: geometry, required: true, title: 图斑范围}
states:
  checking:
    title: 待核查
  checked:
    title: 已核查
    final: true
transitions:
  - trigger: check
    from: checking
    to: checked
    roles: [village.leader]
"""

GRID = """\
units:
  - code: d
    name: 区
    level: district
    children:
      - code: t
        name: 镇
        level: town
        boundary: {type: Polygon, coordinates: [[[0, 0], [2, 0], [2, 1], [0, 1], [0, 0]]]}
        children:
          - code: va
            name: 甲村
            level: village
            boundary: {type: Polygon, coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
          - code: vb
            name: 乙村
            level: village
            boundary: {type: Polygon, coordinates: [[[1, 0], [2, 0], [2, 1], [1, 1], [1, 0]]]}
people:
  - id: office
    name: 镇专班
    roles: [{unit: t, role: office}]
"""


def feature(spot: str, geometry: Any, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"图斑编号": spot, **props}, "geometry": geometry}


def setup(database: Database, tmp_path: Path) -> None:
    (tmp_path / "spots.yaml").write_text(WORKFLOW, encoding="utf-8")
    (tmp_path / "grid.yaml").write_text(GRID, encoding="utf-8")
    run(database, "workflow", "load", str(tmp_path / "spots.yaml"))
    run(database, "grid", "load", str(tmp_path / "grid.yaml"))


def collection(path: Path, *features: dict[str, Any]) -> Path:
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": list(features)}), encoding="utf-8"
    )
    return path


def test_spots_are_placed_in_the_village_that_holds_them(
    database: Database, tmp_path: Path
) -> None:
    setup(database, tmp_path)
    spots = collection(
        tmp_path / "spots.geojson",
        feature("S-1", square(0.2, 0.2, 0.1)),  # inside 甲村
        feature("S-2", square(0.95, 0.5, 0.2)),  # straddles, mostly in 乙村
        feature("S-3", {"type": "Point", "coordinates": [1.5, 0.5]}),  # a point in 乙村
        feature("S-4", square(0.2, 0.2, 0.1), unit="t"),  # a unit given wins
    )
    done = run(database, "case", "import", "spots", str(spots), "--actor", "office", "--json")
    answer = json.loads(done.stdout)
    ids = [item["id"] for item in answer["items"]]
    units = [
        json.loads(run(database, "case", "show", case_id, "--json").stdout)["unit"]
        for case_id in ids
    ]
    assert units == ["va", "vb", "vb", "t"]
    shown = json.loads(run(database, "case", "show", ids[0], "--json").stdout)
    assert shown["data"]["outline"] == square(0.2, 0.2, 0.1)


def test_a_spot_outside_every_boundary_or_with_a_bad_shape_writes_nothing(
    database: Database, tmp_path: Path
) -> None:
    setup(database, tmp_path)
    unclosed = {
        "type": "Polygon",
        "coordinates": [[[0.1, 0.1], [0.2, 0.1], [0.2, 0.2], [0.1, 0.2]]],
    }
    spots = collection(
        tmp_path / "bad.geojson",
        feature("S-1", square(0.2, 0.2, 0.1)),
        feature("S-2", square(5, 5, 0.1)),  # outside the grid
        feature("S-3", unclosed),
        feature("S-4", square(0.2, 0.2, 0.1), 地块="x"),  # not a field
    )
    done = run(database, "case", "import", "spots", str(spots), "--actor", "office", check=False)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    report = done.stderr
    assert "2: unit: not given, and no unit's boundary holds the geometry" in report
    assert "3: outline.coordinates[0]: the ring is not closed" in report
    assert "4: 地块: property '地块' is not a field of the workflow" in report
    assert json.loads(run(database, "case", "list", "--json").stdout) == []


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"type": "Point", "coordinates": [200, 0]}, "longitude 200.0 is outside"),
        ("POLYGON((0 0, 1 0, 1 1, 0 0))", "expected a GeoJSON object, got str"),
        ({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, "LineString"),
    ],
)
def test_a_geometry_field_checks_its_value(value: Any, fragment: str) -> None:
    spec = FieldSpec(name="outline", type="geometry")
    problem = check_value(spec, value)
    assert problem is not None and fragment in problem


def test_a_geometry_field_keeps_the_shape_of_a_feature() -> None:
    spec = FieldSpec(name="outline", type="geometry")
    value = {"type": "Feature", "properties": {}, "geometry": square(0, 0, 1)}
    assert check_value(spec, value) is None
    assert normalize(spec, value) == square(0, 0, 1)
