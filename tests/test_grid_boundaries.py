"""Unit boundaries in the grid file: checked where written, stored, served, searched."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import shapely

from engine.app import App
from engine.errors import GridError
from engine.grid.parse import parse_grid
from tests.support.databases import Database
from tests.support.geometry import square
from tests.support.paths import GENGBAO, ROOT


def grid_text(town_boundary: str = "", extra_top: str = "") -> str:
    return f"""\
{extra_top}units:
  - code: d
    name: 区
    level: district
    children:
      - code: t1
        name: 一镇
        level: town
{town_boundary}        children:
          - code: v1
            name: 一村
            level: village
          - code: v2
            name: 二村
            level: village
people:
  - id: p1
    name: 张三
    roles: [{{unit: v1, role: leader}}]
"""


INLINE = """\
        boundary:
          type: Polygon
          coordinates: [[[106.5, 29.5], [106.6, 29.5], [106.6, 29.6], [106.5, 29.6], [106.5, 29.5]]]
"""


def test_an_inline_boundary_is_read_as_geojson() -> None:
    grid = parse_grid(grid_text(INLINE), "g.yaml")
    town = next(u for u in grid.units if u.code == "t1")
    assert town.boundary == square(106.5, 29.5, 0.1) | {
        "coordinates": [[[106.5, 29.5], [106.6, 29.5], [106.6, 29.6], [106.5, 29.6], [106.5, 29.5]]]
    }
    assert next(u for u in grid.units if u.code == "v1").boundary is None


@pytest.mark.parametrize(
    ("boundary", "line", "fragment"),
    [
        (
            INLINE.replace("[106.5, 29.5]]]", "[106.5, 29.55]]]"),
            10,
            "units[0].children[0].boundary.coordinates[0]: the ring is not closed",
        ),
        (
            INLINE.replace("[[[106.5, 29.5],", "[[[29.5, 106.5],", 1),
            10,
            "latitude 106.5 is outside -90..90 (is it [latitude, longitude]?",
        ),
        (
            "        boundary: {type: Point, coordinates: [106.5, 29.5]}\n",
            9,
            "a boundary is a Polygon or MultiPolygon, got Point",
        ),
    ],
)
def test_a_bad_boundary_is_refused_at_its_line(boundary: str, line: int, fragment: str) -> None:
    with pytest.raises(GridError) as caught:
        parse_grid(grid_text(boundary), "g.yaml")
    message = str(caught.value)
    assert fragment in message
    assert message.startswith(f"g.yaml:{line}:")  # where the boundary's value starts


def test_boundaries_from_a_feature_collection(tmp_path: Path) -> None:
    features = [
        {"type": "Feature", "properties": {"code": "v1"}, "geometry": square(106.5, 29.5, 0.05)},
        {"type": "Feature", "properties": {"code": "v2"}, "geometry": square(106.55, 29.5, 0.05)},
    ]
    (tmp_path / "areas.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8"
    )
    path = tmp_path / "grid.yaml"
    path.write_text(grid_text(extra_top="boundaries: areas.geojson\n"), encoding="utf-8")
    grid = parse_grid(path.read_text(encoding="utf-8"), str(path))
    assert {u.code: u.boundary is not None for u in grid.units} == {
        "d": False,
        "t1": False,
        "v1": True,
        "v2": True,
    }
    features.append({"type": "Feature", "properties": {"code": "v3"}, "geometry": square(0, 0, 1)})
    (tmp_path / "areas.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8"
    )
    with pytest.raises(GridError, match=r"areas.geojson: features\[2\].*'v3' is not a unit"):
        parse_grid(path.read_text(encoding="utf-8"), str(path))


def test_boundaries_are_stored_served_and_searched(app: App, tmp_path: Path) -> None:
    demo = len(app.grid.locator())  # the demo grid's own boundaries (another district)
    path = tmp_path / "grid.yaml"
    path.write_text(grid_text(INLINE), encoding="utf-8")
    app.grid.load(path)
    assert app.grid.unit("t1")["boundary"] == parse_grid(grid_text(INLINE)).units[1].boundary
    assert app.grid.unit("v1")["boundary"] is None
    locator = app.grid.locator()
    assert len(locator) == demo + 1  # of this grid, only the town has a boundary
    inside, outside = shapely.Point(106.55, 29.55), shapely.Point(107, 30)
    assert locator.locate_many([inside, outside]) == ["t1", None]
    # A reload without the boundary removes it: the file is the register.
    path.write_text(grid_text(), encoding="utf-8")
    app.grid.load(path)
    assert app.grid.unit("t1")["boundary"] is None
    assert len(app.grid.locator()) == demo


def test_grid_locate_from_the_command_line(tmp_path: Path, database: Database) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "GENGBAO_DATABASE_URL": database.url}
        return subprocess.run(
            [GENGBAO, *args], capture_output=True, text=True, env=env, cwd=ROOT, check=False
        )

    path = tmp_path / "grid.yaml"
    path.write_text(grid_text(INLINE), encoding="utf-8")
    assert run("grid", "load", str(path)).returncode == 0
    inside = run("grid", "locate", "106.55", "29.55")
    assert (inside.returncode, inside.stdout.strip()) == (0, "t1  一镇  (town)")
    outside = run("grid", "locate", "107", "30", "--json")
    assert (outside.returncode, json.loads(outside.stdout)) == (3, {"unit": None})
    swapped = run("grid", "locate", "29.5", "106.5")
    assert swapped.returncode == 1
    assert "latitude 106.5 is outside -90..90" in swapped.stderr
    assert "Traceback" not in swapped.stderr
