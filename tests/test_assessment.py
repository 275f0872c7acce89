"""The assessment report on a small grid whose every number is worked out by hand below.

Grid: district d → towns t1 (villages v1 with group g1, and v2) and t2 (village v3).
Period: September 2026 (Asia/Shanghai).  Rules: every village patrolled weekly.

Cases (farmland_violation; deadlines: discovered 2h, stop_failed 2h, stopped 24h,
reported 24h, rungs as in the bundled workflow):

====  ====  ===============  ==================================================
case  unit  opened           what happened
====  ====  ===============  ==================================================
A     g1    Sep 7 10:00      stop 11:00 (1h), report 12:00 (1h), dismiss 20:00
                             (8h); all on time; case_no = TB-001
B     v1    Sep 8 10:00      stop_fail 13:00 (3h, late: overdue + rung 0),
                             report 13:30 (0.5h), dismiss Sep 10 12:00 (46.5h,
                             late: overdue + rung 0)
C     v3    Sep 20 10:00     never stopped: overdue + rungs 0, 1, 2 by Sep 21 13:00
E     v2    Sep 29 10:00     stop 10:30 (0.5h); the report is not yet due
F     v2    Aug 31 23:00     not a September case; never stopped: its deadline
                             (Sep 1 01:00) and rungs 0-2 fall in September
====  ====  ===============  ==================================================

Patrols (weeks ending in September: Aug 31–Sep 6, Sep 7–13, 14–20, 21–27):
v1 every week (+ one by g1's head in week 2), v2 in week 1 only, v3 on
Sunday Aug 31 only (week 1 met, the patrol itself not in September).

Findings: S1 TB-001 in v1 (found by A, by reference); S2 in v2 30 m from E,
Sep 30 (found); S3 same point, Sep 28 (E opened later: missed); S4 in v3,
500 m from C (missed); S5 in t2 10 m from C (found, a case below the town);
S6 in October (outside); S7 in v2 80 m from F (missed at 50 m).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from engine.app import App
from engine.assessment import AssessmentConfig, assess, parse_config, render
from engine.cli import main
from engine.clock import FixedClock
from engine.errors import ConfigError, InvalidDateRange
from engine.grid.registry import parse_grid
from tests.support.databases import Database
from tests.support.farmland import CASE_DATA, farmland_app, local
from tests.support.paths import ROOT
from tests.support.patrolling import shifted, write_rules

GRID = """\
units:
  - code: d
    name: 区
    level: district
    children:
      - code: t1
        name: 一镇
        level: town
        children:
          - code: v1
            name: 甲村
            level: village
            children: [{code: g1, name: 甲村一组, level: group}]
          - {code: v2, name: 乙村, level: village}
      - code: t2
        name: 二镇
        level: town
        children: [{code: v3, name: 丙村, level: village}]
people:
  - {id: p-d, name: 区专班, roles: [{unit: d, role: office}]}
  - {id: p-t1, name: 一镇镇长, roles: [{unit: t1, role: leader}]}
  - {id: p-t2, name: 二镇镇长, roles: [{unit: t2, role: leader}]}
  - {id: p-v1, name: 甲村委员, roles: [{unit: v1, role: member}]}
  - {id: p-g1, name: 甲村一组组长, roles: [{unit: g1, role: member}]}
  - {id: p-v2, name: 乙村委员, roles: [{unit: v2, role: member}]}
  - {id: p-v3, name: 丙村委员, roles: [{unit: v3, role: member}]}
"""
RULES = """\
patrols:
  - level: village
    every: week
    roles: [village.member, group.member]
    escalate: [{after: 0m, notify: [town.leader]}]
"""
E_AT = (106.50, 29.50)
F_AT = (106.60, 29.50)
C_AT = (106.70, 29.40)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(local(2026, 8, 31, 8))


@pytest.fixture
def app(database: Database, clock: FixedClock, tmp_path: Path) -> Iterator[App]:
    application = farmland_app(database.url, clock, grid=parse_grid(GRID, "grid.yaml"))
    try:
        build(application, clock, tmp_path)
        yield application
    finally:
        application.close()


def build(app: App, clock: FixedClock, tmp_path: Path) -> None:
    """The fixture of the module docstring, in time order."""
    cases, ledger = app.cases, app.patrols.ledger
    app.patrols.load_rules(write_rules(tmp_path, RULES))

    def at(*when: int) -> None:
        clock.set(local(*when))

    def sweep(*when: int) -> None:
        at(*when)
        app.timers.run_due()

    def create(unit: str, actor: str, **data: Any) -> str:
        return cases.create_case("farmland_violation", unit, actor, {**CASE_DATA, **data}).id

    at(2026, 8, 31, 9)
    ledger.record("v3", "p-v3")
    at(2026, 8, 31, 23)
    f = create("v2", "p-v2", location=list(F_AT))
    at(2026, 9, 2, 9)
    ledger.record("v1", "p-v1")
    ledger.record("v2", "p-v2")
    sweep(2026, 9, 7, 0, 1)
    at(2026, 9, 7, 10)
    a = create("g1", "p-g1", case_no="TB-001")
    at(2026, 9, 7, 11)
    cases.submit_event(a, "stop", "p-g1", {"stop_note": "已制止"})
    at(2026, 9, 7, 12)
    cases.submit_event(a, "report", "p-g1", {"report_note": "报镇"})
    at(2026, 9, 7, 20)
    cases.submit_event(a, "dismiss", "p-t1", {"verify_note": "核实", "close_reason": "设施农用地"})
    at(2026, 9, 8, 10)
    b = create("v1", "p-v1")
    ledger.record("v1", "p-v1")
    ledger.record("g1", "p-g1")
    at(2026, 9, 8, 13)
    cases.submit_event(b, "stop_fail", "p-v1", {"stop_note": "拒不停工"})
    at(2026, 9, 8, 13, 30)
    cases.submit_event(b, "report", "p-v1", {"report_note": "制止无效"})
    at(2026, 9, 10, 12)
    cases.submit_event(b, "dismiss", "p-t1", {"verify_note": "核实", "close_reason": "已补办手续"})
    sweep(2026, 9, 14, 0, 1)
    at(2026, 9, 15, 9)
    ledger.record("v1", "p-v1")
    at(2026, 9, 20, 10)
    create("v3", "p-v3", location=list(C_AT))
    sweep(2026, 9, 21, 0, 1)
    sweep(2026, 9, 21, 13)
    at(2026, 9, 22, 9)
    ledger.record("v1", "p-v1")
    sweep(2026, 9, 28, 0, 1)
    at(2026, 9, 29, 10)
    e = create("v2", "p-v2", location=list(E_AT))
    at(2026, 9, 29, 10, 30)
    cases.submit_event(e, "stop", "p-v2", {"stop_note": "已制止"})

    def point(at: tuple[float, float], east: float = 0, north: float = 0) -> str:
        lng, lat = shifted(*at, east, north)
        return f"{lng:.8f},{lat:.8f}"

    survey = "ref,unit,found_on,area_m2,lng,lat,note\n" + "\n".join(
        [
            "TB-001,v1,2026-09-25,,,,",
            f"S2,v2,2026-09-30,,{point(E_AT, north=30)},",
            f"S3,v2,2026-09-28,,{point(E_AT, north=30)},",
            f"S4,v3,2026-09-15,,{point(C_AT, north=500)},",
            f"S5,t2,2026-09-22,,{point(C_AT, east=10)},",
            f"S6,v1,2026-10-03,,{point(E_AT)},",
            f"S7,v2,2026-09-10,,{point(F_AT, east=80)},",
        ]
    )
    path = tmp_path / "survey.csv"
    path.write_text(survey + "\n", encoding="utf-8")
    assert app.patrols.import_survey(path).problems == []
    assert f and e


def september(app: App, **kw: Any) -> dict[str, dict[str, Any]]:
    report = assess(
        app.engine, date(2026, 9, 1), date(2026, 9, 30), AssessmentConfig(), "Asia/Shanghai", **kw
    )
    return {r["unit"]: r for r in report.as_dicts()}


KEYS = (
    "cases",
    "stop_on_time",
    "report_on_time",
    "verify_on_time",
    "median_stop_hours",
    "median_report_hours",
    "median_verify_hours",
    "overdue",
    "escalations",
    "patrols_done",
    "patrols_required",
    "patrol_rate",
    "missed_patrols",
    "findings",
    "missed",
    "score",
)
EXPECTED = {
    # cases, on time: stop report verify, median hours: stop report verify, overdue,
    # escalations, patrols done, required, rate, missed patrols, findings, missed, score
    "d": (4, 0.5, 1.0, 0.5, 1.0, 0.75, 27.25, 4, 8, 6, 12, 0.5, 6, 6, 3, 88.2),
    "t1": (3, 0.6667, 1.0, 0.5, 1.0, 0.75, 27.25, 3, 5, 6, 8, 0.625, 3, 4, 2, 91.88),
    "v1": (2, 0.5, 1.0, 0.5, 2.0, 0.75, 27.25, 2, 2, 5, 4, 1.0, 0, 1, 0, 96.9),
    "g1": (1, 1.0, 1.0, 1.0, 1.0, 1.0, 8.0, 0, 0, 1, 0, None, 0, 0, 0, 100.0),
    "v2": (1, 1.0, None, None, 0.5, None, None, 1, 3, 1, 4, 0.25, 3, 3, 2, 90.4),
    "t2": (1, 0.0, None, None, None, None, None, 1, 3, 0, 4, 0.25, 3, 2, 1, 85.9),
    "v3": (1, 0.0, None, None, None, None, None, 1, 3, 0, 4, 0.25, 3, 1, 1, 85.9),
}


def test_every_number_checked_by_hand(app: App) -> None:
    rows = september(app)
    assert list(rows) == ["d", "t1", "v1", "g1", "v2", "t2", "v3"]  # the grid's order
    got = {unit: tuple(row[k] for k in KEYS) for unit, row in rows.items()}
    assert got == EXPECTED
    assert rows["t1"]["overdue_by_state"] == {"discovered": 2, "reported": 1}
    assert rows["d"]["overdue_by_state"] == {"discovered": 3, "reported": 1}
    assert (rows["t1"]["stop_on_time_count"], rows["t1"]["stop_due"]) == (2, 3)
    assert rows["t1"]["patrols_counted"] == 5
    # every component of the score is shown, so a unit can check it
    t1 = rows["t1"]["components"]
    assert t1["missed_violation"] == {"value": 2, "weight": -0.5, "points": -1.0}
    assert t1["stop_late_share"] == {"value": 0.3333, "weight": -5.0, "points": -1.6665}
    assert t1["patrol_shortfall"] == {"value": 0.375, "weight": -10.0, "points": -3.75}
    assert t1["report_late_share"]["points"] == 0.0
    assert rows["v2"]["components"]["report_late_share"] == {
        "value": None,
        "weight": -5.0,
        "points": 0.0,
    }
    total = 100 + sum(c["points"] for c in t1.values())
    assert round(total, 2) == rows["t1"]["score"]


def test_the_same_numbers_every_time_and_in_every_scope(app: App) -> None:
    first = september(app)
    assert september(app) == first
    scoped = september(app, unit="t1")
    assert list(scoped) == ["t1", "v1", "g1", "v2"] and scoped["t1"] == first["t1"]
    assert list(september(app, level="village")) == ["v1", "v2", "v3"]
    # heavier weights change the score, not the counts
    config = parse_config("weights: {missed_violation: -2}\nmatch_radius_m: 100\n")
    report = assess(app.engine, date(2026, 9, 1), date(2026, 9, 30), config, "Asia/Shanghai")
    v2 = {r.unit: r for r in report.rows}["v2"]
    assert (v2.findings, v2.missed) == (3, 1)  # S7 (80 m) found at 100 m
    assert v2.components["missed_violation"]["points"] == -2.0


def test_the_formats(app: App) -> None:
    report = assess(
        app.engine, date(2026, 9, 1), date(2026, 9, 30), AssessmentConfig(), "Asia/Shanghai"
    )
    table = render(report, "table")
    assert isinstance(table, str)
    assert "耕地保护网格化监管考评 2026-09-01 至 2026-09-30" in table
    line = next(li for li in table.splitlines() if li.startswith("  一镇"))
    assert line.split()[1:] == [
        "3", "66.7%", "100.0%", "1", "0.75", "27.25", "3", "5", "6/8", "62.5%", "3", "4", "2",
        "91.88",
    ]  # fmt: skip
    data = json.loads(render(report, "json"))
    assert {"unit", "cases", "patrols_done", "patrols_required", "overdue", "missed", "score"} <= (
        set(data[0])
    )
    csv_text = render(report, "csv")
    assert isinstance(csv_text, str) and csv_text.startswith("\ufeff单位编码,单位,级别,案件数")
    assert len(csv_text.splitlines()) == 8
    book = load_workbook(io.BytesIO(render(report, "xlsx")))  # type: ignore[arg-type]
    sheet = book.active
    assert sheet is not None and sheet.max_row == 8
    assert [c.value for c in sheet[3]][:4] == ["t1", "一镇", "镇街", 3]
    page = render(report, "html")
    assert isinstance(page, str) and page.count("<tr>") == 8 and "甲村一组" in page


def test_the_cli_json(
    app: App,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("GENGBAO_DATABASE_URL", database.url)
    monkeypatch.chdir(ROOT)
    args = ["report", "assessment", "--from", "2026-09-01", "--to", "2026-09-30"]
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(r["unit"], r["score"]) for r in data] == [(u, e[-1]) for u, e in EXPECTED.items()]
    weights = tmp_path / "weights.yaml"
    weights.write_text("weights:\n  missed_violatoin: -1\n", encoding="utf-8")
    assert main([*args, "--weights", str(weights)]) == 1
    err = capsys.readouterr().err
    assert f"{weights}:2:3: error: weights.missed_violatoin: unknown key" in err
    assert "did you mean 'missed_violation'?" in err
    out = tmp_path / "report.xlsx"
    assert main([*args, "--format", "xlsx", "-o", str(out)]) == 0
    assert load_workbook(out).active is not None
    assert main(["survey", "list", "--missed", "--to", "2026-09-30", "--json"]) == 0
    assert [i["ref"] for i in json.loads(capsys.readouterr().out)] == ["S7", "S4", "S3"]
    # a backwards range: the report says so in its words, the CLI's edge names its flags
    assert main(["report", "assessment", "--from", "2026-09-30", "--to", "2026-09-01"]) == 2
    assert "error: --to 2026-09-01 is before --from 2026-09-30" in capsys.readouterr().err


def test_a_backwards_range_is_refused_without_naming_cli_flags(app: App) -> None:
    config = parse_config("weights: {missed_violation: -2}\n")
    with pytest.raises(InvalidDateRange) as info:
        assess(app.engine, date(2026, 9, 30), date(2026, 9, 1), config, "Asia/Shanghai")
    assert str(info.value) == "the date range ends on 2026-09-01, before it starts on 2026-09-30"
    assert info.value.details == {"first": "2026-09-30", "last": "2026-09-01"}


def test_config_errors_are_positioned() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            "base: lots\nmeasures:\n  stop: {from: [], to: [stopped]}\n  fix: {}\n", "a.yaml"
        )
    assert str(info.value).splitlines() == [
        "a.yaml:1:7: error: base: expected a number, got text ('lots')",
        "a.yaml:3:16: error: measures.stop.from: expected a non-empty list of state names, "
        "got an empty list",
        "a.yaml:4:3: error: measures.fix: unknown key 'fix' (allowed: stop, report, verify)",
    ]
    bundled = (ROOT / "config" / "assessment.yaml").read_text(encoding="utf-8")
    assert parse_config(bundled).as_dict() == AssessmentConfig().as_dict()
