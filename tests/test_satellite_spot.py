"""The bundled satellite-spot workflow (卫片执法) walked end to end on the demo grid.

Spots arrive as a GeoJSON FeatureCollection through ``gengbao case import`` (a
real process), each placed in the village whose demo boundary holds it; then
one is judged legal and closed, one illegal and small goes through the town's
rectification and the district's review (rejected once), one on permanent
basic farmland goes to the district, and one nobody checks this month climbs
its escalation rungs — on the fixed clock, timers fired by ``run_due``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from engine.app import App
from engine.clock import FixedClock
from engine.errors import GuardFailed, InvalidData, NotPermitted
from tests.support.databases import Database
from tests.support.farmland import ROOT, local
from tests.support.geometry import square
from tests.test_cases_cli import run

SPOT_FILE = ROOT / "workflows" / "satellite_spot.yaml"
ISSUER = "p-ddk-office1"
PHOTO = "9f" * 32  # a photo's SHA-256, as `gengbao patrol photo add` stores it


def spot(number: str, geometry: dict[str, Any], land_type: str, area: float) -> dict[str, Any]:
    """A spot as the ministry's file gives it: properties by their Chinese titles."""
    props = {
        "图斑编号": number,
        "地类": land_type,
        "图斑面积（平方米）": area,
        "下发批次": "2026-09",
        "核查期限": "2026-09-30",
    }
    return {"type": "Feature", "properties": props, "geometry": geometry}


SPOTS = [
    spot("S-LEGAL", square(106.4700, 29.4800, 0.0003), "一般耕地", 820),  # 八桥镇新华村
    spot("S-SMALL", square(106.4900, 29.4700, 0.0003), "一般耕地", 1150),  # 八桥镇胜利村
    spot("S-BASIC", square(106.4750, 29.4400, 0.0005), "永久基本农田", 2300),  # 建胜镇百花村
    spot("S-LATE", square(106.4400, 29.4500, 0.0003), "一般耕地", 600),  # 跳磴镇金河村
]
PLACES = {
    "S-LEGAL": "ddk-bq-xh",
    "S-SMALL": "ddk-bq-sl",
    "S-BASIC": "ddk-js-bh",
    "S-LATE": "ddk-td-jh",
}


def checked_on_site(lng: float, lat: float) -> dict[str, Any]:
    return {
        "check_note": "现场核查，已拍照",
        "photo_hashes": [PHOTO],
        "check_position": {"type": "Point", "coordinates": [lng, lat]},
    }


@pytest.fixture
def spots(app: App, database: Database, tmp_path: Path) -> dict[str, str]:
    """The four spots imported at 2026-09-18 10:00; spot number → case id."""
    app.catalog.register_file(SPOT_FILE)
    path = tmp_path / "2026-09.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": SPOTS}), "utf-8")
    done = run(
        database,
        "--now", "2026-09-18T10:00:00+08:00",
        "case", "import", "satellite_spot", str(path), "--actor", ISSUER, "--json",
    )  # fmt: skip
    ids = [item["id"] for item in json.loads(done.stdout)["items"]]
    numbers = [feature["properties"]["图斑编号"] for feature in SPOTS]
    return dict(zip(numbers, ids, strict=True))


def state(app: App, case_id: str) -> str:
    return app.cases.get_case(case_id).state


def test_each_spot_lands_in_the_village_whose_boundary_holds_it(
    app: App, spots: dict[str, str]
) -> None:
    for number, case_id in spots.items():
        view = app.cases.get_case(case_id)
        assert (view.unit, view.state) == (PLACES[number], "issued"), number
        assert view.data["outline"]["type"] == "Polygon"
    # the month's rhythm: every issued spot is due at the end of verify_by
    shown = json.loads(json.dumps(app.cases.get_case(spots["S-LEGAL"]).as_dict(), default=str))
    assert shown["data"]["verify_by"] == "2026-09-30"


def test_a_legal_spot_needs_its_approval_number_and_closes_after_review(
    app: App, spots: dict[str, str], clock: FixedClock
) -> None:
    case_id = spots["S-LEGAL"]
    submit = app.cases.submit_event
    submit(case_id, "check", "p-bq-xh-member1", checked_on_site(106.47015, 29.48012))
    assert state(app, case_id) == "checked"
    with pytest.raises(InvalidData, match="approval_no"):
        submit(case_id, "judge", "p-bq-office", {"verdict": "合法", "judge_note": "有手续"})
    assert state(app, case_id) == "checked"  # refused: nothing changed
    clock.advance(dt.timedelta(days=1))
    legal = {
        "verdict": "合法",
        "judge_note": "已办理农用地转用",
        "approval_no": "渝府地〔2026〕123号",
    }
    submit(case_id, "judge", "p-bq-office", legal)
    assert state(app, case_id) == "review"
    with pytest.raises(NotPermitted):  # the town cannot review its own judgement
        submit(case_id, "pass", "p-bq-office", {"review_note": "同意"})
    submit(case_id, "pass", ISSUER, {"review_note": "批准文件齐全"})
    view = app.cases.get_case(case_id)
    assert (view.state, view.open) == ("closed", False)
    assert view.data["approval_no"] == "渝府地〔2026〕123号"
    assert view.data["check_position"] == {"type": "Point", "coordinates": [106.47015, 29.48012]}


def test_a_small_illegal_spot_is_rectified_by_the_town_and_reviewed_by_the_district(
    app: App, spots: dict[str, str], clock: FixedClock
) -> None:
    case_id = spots["S-SMALL"]
    submit = app.cases.submit_event
    submit(case_id, "check", "p-bq-sl-member1", checked_on_site(106.4901, 29.4701))
    illegal = {"verdict": "违法", "judge_note": "未经批准挖塘", "violation_kind": "挖湖造景"}
    submit(case_id, "judge", "p-bq-office", illegal)
    assert state(app, case_id) == "town_handling"  # 1,150 m² of ordinary farmland: the town
    order = {"decision": "责令恢复耕作条件", "rectify_by": "2026-10-30"}
    submit(case_id, "order_rectify", "p-bq-office", order)
    assert state(app, case_id) == "rectifying"
    done = {"rectify_record": "已回填复耕", "rectify_photos": [PHOTO]}
    submit(case_id, "rectified", "p-bq-sl-leader", done)
    assert state(app, case_id) == "review"
    with pytest.raises(InvalidData, match="rectify_by"):  # back to rectifying: a new date
        submit(case_id, "reject", ISSUER, {"review_note": "复耕不到位"})
    again = {"review_note": "复耕不到位", "rectify_by": "2026-11-10"}
    submit(case_id, "reject", ISSUER, again)
    assert state(app, case_id) == "rectifying"
    submit(case_id, "rectified", "p-bq-sl-leader", done)
    submit(case_id, "pass", ISSUER, {"review_note": "整改到位"})
    assert state(app, case_id) == "closed"


def test_an_illegal_spot_on_permanent_basic_farmland_goes_to_the_district(
    app: App, spots: dict[str, str]
) -> None:
    case_id = spots["S-BASIC"]
    submit = app.cases.submit_event
    submit(case_id, "check", "p-js-bh-member1", checked_on_site(106.4752, 29.4402))
    with pytest.raises(GuardFailed):  # no verdict: no rule of judge holds
        submit(case_id, "judge", "p-js-office", {"judge_note": "待定"})
    illegal = {"verdict": "违法", "judge_note": "违法建房", "violation_kind": "违法建房"}
    submit(case_id, "judge", "p-js-office", illegal)
    assert state(app, case_id) == "district_enforcement"  # 2,300 m² but 永久基本农田
    with pytest.raises(NotPermitted):
        submit(case_id, "file_case", "p-js-office", {})
    filing = {"case_no": "大规资立〔2026〕9号", "decision": "限期拆除", "rectify_by": "2026-11-30"}
    submit(case_id, "file_case", "p-ddk-planning", filing)
    assert state(app, case_id) == "rectifying"


def test_a_spot_nobody_checks_this_month_climbs_its_rungs(
    app: App, spots: dict[str, str], clock: FixedClock
) -> None:
    case_id = spots["S-LATE"]
    clock.set(local(2026, 9, 30, 23, 59))
    app.timers.run_due()
    assert app.cases.get_case(case_id).escalation_level == 0  # still within the month
    clock.set(local(2026, 10, 1, 0, 0))
    app.timers.run_due()
    assert app.cases.get_case(case_id).escalation_level == 1  # 24:00 on verify_by
    clock.set(local(2026, 10, 4, 0, 0))
    app.timers.run_due()
    view = app.cases.get_case(case_id)
    assert (view.state, view.escalation_level) == ("issued", 2)  # three days on: the district


def test_the_bundled_workflow_file_validates_against_the_demo_grid(database: Database) -> None:
    done = run(
        database, "validate", str(SPOT_FILE), "--grid", str(ROOT / "config/grid/dadukou.yaml")
    )
    assert "ok: satellite_spot" in done.stdout
