"""Survey findings with shapes: found by the grid when a case's geometry intersects them.

Findings arrive as a GeoJSON FeatureCollection (``gengbao survey import``) or a CSV
``geometry`` cell; satellite-spot cases carry their outline, farmland cases their
``location`` point.  The old rules (reference, 50 m) keep working beside the new one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from engine.app import App
from engine.assessment import list_findings
from engine.clock import FixedClock
from tests.support.farmland import CASE_DATA, ROOT, local
from tests.support.geometry import square

SPOT_FILE = ROOT / "workflows" / "satellite_spot.yaml"
SPOT = {"land_type": "一般耕地", "area_m2": 900, "batch": "2026-09", "verify_by": "2026-09-30"}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(local(2026, 9, 1, 9))


def finding(ref: str, unit: str, geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    properties = {"图斑编号": ref, "单位": unit, "发现日期": "2026-09-10", **props}
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def write_collection(path: Path, *features: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(features)}), "utf-8")
    return path


def found_by(app: App, **kw: Any) -> dict[str, list[tuple[str, str]]]:
    items = list_findings(app.engine, None, None, radius_m=50, **kw)
    return {i["ref"]: [(h["case"], h["how"]) for h in i["found_by"]] for i in items}


def test_a_finding_is_found_by_a_case_whose_geometry_intersects_it(
    app: App, clock: FixedClock, tmp_path: Path
) -> None:
    app.catalog.register_file(SPOT_FILE)
    clock.set(local(2026, 9, 2, 10))
    outline = square(106.4700, 29.4800, 0.001)
    spot = app.cases.create_case(
        "satellite_spot",
        "ddk-bq-xh",
        "p-ddk-office1",
        {**SPOT, "spot_no": "S-1", "outline": outline},
    ).id
    farm = app.cases.create_case(
        "farmland_violation",
        "ddk-bq-sl",
        "p-bq-sl-member1",
        {**CASE_DATA, "location": [106.49, 29.47]},
    ).id
    path = write_collection(
        tmp_path / "findings.geojson",
        finding("F-overlap", "ddk-bq-xh", square(106.4705, 29.4805, 0.001)),
        finding("F-apart", "ddk-bq-xh", square(106.4750, 29.4850, 0.001)),  # disjoint
        finding("F-town", "ddk-bq", {"type": "Point", "coordinates": [106.4702, 29.4802]}),
        finding("F-covers", "ddk-bq-sl", square(106.4895, 29.4695, 0.001)),  # holds a location
        finding("F-other", "ddk-js-bh", square(106.4705, 29.4805, 0.001)),  # another town
        finding("F-late", "ddk-bq-xh", square(106.4705, 29.4805, 0.001), 发现日期="2026-09-01"),
    )
    result = app.patrols.import_survey(path, "卫片图斑")
    assert (result.imported, result.problems) == (6, [])
    assert found_by(app) == {
        "F-late": [],  # the case was opened the day after
        "F-apart": [],
        "F-covers": [(farm, "geometry")],
        "F-other": [],
        "F-overlap": [(spot, "geometry")],
        "F-town": [(spot, "geometry")],  # a point finding of the town, inside a village spot
    }
    missed = list_findings(app.engine, date(2026, 9, 10), None, radius_m=50, missed_only=True)
    assert sorted(i["ref"] for i in missed) == ["F-apart", "F-other"]
    report = app.assessment.report(
        date(2026, 9, 1), date(2026, 9, 30), app.assessment.config(), unit="ddk-bq"
    )
    town = next(r for r in report.rows if r.unit == "ddk-bq")
    assert (town.findings, town.missed) == (5, 2)  # F-late, F-apart missed; 3 found


def test_the_old_rules_still_match_and_a_pair_is_listed_once(
    app: App, clock: FixedClock, tmp_path: Path
) -> None:
    clock.set(local(2026, 9, 2, 10))
    farm = app.cases.create_case(
        "farmland_violation",
        "ddk-bq-sl",
        "p-bq-sl-member1",
        {**CASE_DATA, "location": [106.49, 29.47], "case_no": "WP-9"},
    ).id
    point = json.dumps({"type": "Point", "coordinates": [106.49, 29.47]})
    csv_text = (
        "ref,unit,found_on,geometry,note\n"
        f'S-point,ddk-bq-sl,2026-09-10,"{point.replace(chr(34), chr(34) * 2)}",a point cell\n'
        "WP-9,ddk-bq-sl,2026-09-10,,by reference\n"
    )
    path = tmp_path / "survey.csv"
    path.write_text(csv_text, encoding="utf-8")
    assert app.patrols.import_survey(path).problems == []
    # the point fills lng/lat: 0 m away and intersecting, listed once, as 'distance'
    assert found_by(app) == {"S-point": [(farm, "distance")], "WP-9": [(farm, "ref")]}


def test_bad_shapes_are_reported_by_feature_and_the_rest_imported(app: App, tmp_path: Path) -> None:
    unclosed = {
        "type": "Polygon",
        "coordinates": [[[106.47, 29.48], [106.48, 29.48], [106.48, 29.49]]],
    }
    path = write_collection(
        tmp_path / "findings.geojson",
        finding("F-1", "ddk-bq-xh", square(106.4700, 29.4800, 0.001)),
        finding("F-2", "ddk-bq-xh", unclosed),
        finding("F-3", "ddk-bq-xh", {"type": "Point", "coordinates": [29.48, 106.47]}),
        {"type": "Nothing"},
    )
    result = app.patrols.import_survey(path, "卫片图斑")
    assert result.imported == 1
    problems = [(p.line, p.message) for p in result.problems]
    assert problems[0][0] == 2 and "a ring needs at least 4 positions" in problems[0][1]
    assert problems[1][0] == 3 and "is it [latitude, longitude]?" in problems[1][1]
    assert problems[2] == (4, "not a GeoJSON Feature")
    (item,) = list_findings(app.engine, None, None, radius_m=50)
    assert item["geometry"] == square(106.4700, 29.4800, 0.001)
    assert item["area_m2"] == pytest.approx(10_760, rel=0.01)  # geodesic, from the shape


def test_building_the_app_does_not_load_shapely() -> None:
    """numpy (under shapely) starts threads when imported; a command that blocks signals
    before its loop (``gengbao worker``) must not have such threads started before it."""
    probe = (
        "import sys, engine.app, engine.cli; print(sorted({'numpy', 'shapely'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "[]"
