"""The assessment dashboard for duty staff (``/ui/assessment``, 考核), over HTTP on both
backends with the fake clock: the table shows the assessment service's numbers for the
period, the charts are SVG, the CSV and XLSX downloads hold the same rows, and a
person of one town sees nothing of another town's units.

Grid: district d → towns t1 (village v1, named with a ``<script>``, and its group
g1) and t2 (village v3).  Villages are patrolled weekly.  September 2026: patrols in
v1 and v3, and a case in g1 never stopped (an overdue fact and its escalations).
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook

from engine.api.app import create_api
from engine.app import App
from engine.assessment import Report, render
from engine.clock import FixedClock
from engine.grid.registry import parse_grid
from engine.grid.visibility import Viewer
from tests.support.databases import Database
from tests.support.farmland import CASE_DATA, farmland_app, local
from tests.support.pages import PASSWORD, signed_in
from tests.support.patrolling import write_rules
from tests.support.serving import serving

SCRIPT = "甲村<script>alert(1)</script>"
GRID = f"""\
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
            name: "{SCRIPT}"
            level: village
            children: [{{code: g1, name: 甲村一组, level: group}}]
      - code: t2
        name: 二镇
        level: town
        children: [{{code: v3, name: 丙村, level: village}}]
people:
  - {{id: p-t1, name: 一镇镇长, roles: [{{unit: t1, role: leader}}]}}
  - {{id: p-t2, name: 二镇镇长, roles: [{{unit: t2, role: leader}}]}}
  - {{id: p-v1, name: 甲村委员, roles: [{{unit: v1, role: member}}]}}
  - {{id: p-g1, name: 甲村一组组长, roles: [{{unit: g1, role: member}}]}}
  - {{id: p-v3, name: 丙村委员, roles: [{{unit: v3, role: member}}]}}
"""
RULES = """\
patrols:
  - level: village
    every: week
    roles: [village.member, group.member]
    escalate: [{after: 0m, notify: [town.leader]}]
"""
PERIOD = "2026-09"
PAGE = "/ui/assessment"
ROW = re.compile(r'<tr data-unit="([\w-]+)">(.*?)</tr>', re.S)
CELL = re.compile(r'data-k="(\w+)"[^>]*>([^<]*)<')
CHARTS = ("scores", "patrols", "overdue")
KEYS = (
    "score",
    "patrols_done",
    "patrols_required",
    "patrol_rate",
    "missed_patrols",
    "overdue",
    "escalations",
    "cases",
    "stop_on_time",
)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(local(2026, 9, 1, 9))


@pytest.fixture
def app(database: Database, clock: FixedClock, tmp_path: Path) -> Iterator[App]:
    application = farmland_app(database.url, clock, grid=parse_grid(GRID, "grid.yaml"))
    try:
        _september(application, clock, tmp_path)
        for person in ("p-t1", "p-t2"):
            application.credentials.set_password(person, PASSWORD)
        yield application
    finally:
        application.close()


def _september(app: App, clock: FixedClock, tmp_path: Path) -> None:
    """Patrols over three weeks, one of v1's weeks missed, and a case left unstopped."""
    app.patrols.load_rules(write_rules(tmp_path, RULES))
    ledger = app.patrols.ledger

    def at(*when: int) -> None:
        clock.set(local(*when))
        app.timers.run_due()

    at(2026, 9, 2, 9)
    ledger.record("v1", "p-v1")
    ledger.record("v3", "p-v3")
    at(2026, 9, 7, 0, 1)
    at(2026, 9, 8, 9)
    ledger.record("v3", "p-v3")  # v1 misses the week of Sep 7
    at(2026, 9, 14, 0, 1)
    at(2026, 9, 14, 10)
    app.cases.create_case("farmland_violation", "g1", "p-g1", dict(CASE_DATA))
    ledger.record("g1", "p-g1")
    at(2026, 9, 14, 13)  # 2 h to stop it: overdue, and its first rung
    at(2026, 9, 15, 10)


@pytest.fixture
def site(app: App) -> Iterator[str]:
    with serving(create_api(app)) as base:
        yield base


def service_report(app: App, person: str) -> Report:
    """September's report as the assessment service gives it to *person*."""
    assessment = app.assessment
    return assessment.report(
        date(2026, 9, 1), date(2026, 9, 30), assessment.config(), viewer=Viewer(person)
    )


def table(page: httpx.Response) -> dict[str, dict[str, str]]:
    """Unit code → the figures of its row, as the page shows them."""
    assert page.status_code == 200, page.text
    return {code: dict(CELL.findall(cells)) for code, cells in ROW.findall(page.text)}


def _pct(value: float | None) -> str:
    return f"{value * 100:.1f}%" if value is not None else "—"


def expected(report: Report) -> dict[str, dict[str, str]]:
    """The compared figures of each row of the service's *report*, formatted as shown."""
    return {
        r.unit: {
            "score": f"{r.score:.2f}",
            "patrols_done": str(r.patrols_done),
            "patrols_required": str(r.patrols_required),
            "patrol_rate": _pct(r.patrol_rate),
            "missed_patrols": str(r.missed_patrols),
            "overdue": str(r.overdue),
            "escalations": str(r.escalations),
            "cases": str(r.cases),
            "stop_on_time": _pct(r.share("stop")),
        }
        for r in report.rows
    }


def shown(rows: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The compared figures of each row (``?`` for a cell the page lacks)."""
    return {code: {k: cells.get(k, "?") for k in KEYS} for code, cells in rows.items()}


def test_the_table_shows_the_services_numbers_for_the_period(app: App, site: str) -> None:
    report = service_report(app, "p-t1")
    by_unit = {r.unit: r for r in report.rows}
    assert list(by_unit) == ["t1", "v1", "g1"]
    # the story left something in every column the test compares
    assert by_unit["v1"].patrols_done >= 2 and by_unit["v1"].patrols_required >= 2
    assert by_unit["t1"].overdue >= 1 and by_unit["t1"].escalations >= 1
    assert by_unit["v1"].missed_patrols >= 1
    with signed_in(site, "p-t1") as town:
        chosen = town.get("/ui/assessment", params={"period": PERIOD})
        assert shown(table(chosen)) == expected(report)
        default = town.get("/ui/assessment")  # the current month, local time: September
        assert shown(table(default)) == expected(report)
        assert "2026-09-01 至 2026-09-30" in default.text
        assert '<option value="2026-09" selected>' in default.text
        quarter = town.get("/ui/assessment", params={"period": "2026-Q3"})
        q3 = app.assessment.report(
            date(2026, 7, 1), date(2026, 9, 30), app.assessment.config(), viewer=Viewer("p-t1")
        )
        assert shown(table(quarter)) == expected(q3)
        assert '<option value="2026-Q3" selected>' in quarter.text
        october = town.get("/ui/assessment", params={"period": "2026-10"})
        assert table(october)["v1"]["patrols_done"] == "0"
        lower = town.get("/ui/assessment", params={"period": "2026-q3"})
        assert shown(table(lower)) == expected(q3)
        assert '<option value="2026-Q3" selected>' in lower.text
        further = town.get("/ui/assessment", params={"period": "2024-02"})  # not offered
        assert '<option value="2024-02" selected>' in further.text
        assert "2024-02-01 至 2024-02-29" in further.text


def test_the_charts_are_svg_of_the_same_report(app: App, site: str) -> None:
    with signed_in(site, "p-t1") as town:
        page = town.get("/ui/assessment", params={"period": PERIOD}).text
        for name in CHARTS:
            src = f'src="/ui/assessment/charts/{name}.svg?period={PERIOD}"'
            assert src in page
            svg = town.get(f"/ui/assessment/charts/{name}.svg", params={"period": PERIOD})
            assert svg.status_code == 200
            assert svg.headers["content-type"] == "image/svg+xml"
            root = ET.fromstring(svg.text)
            assert root.tag == "{http://www.w3.org/2000/svg}svg"
            assert "（t1）" in svg.text and "（g1）" in svg.text
        patrols = town.get("/ui/assessment/charts/patrols.svg", params={"period": PERIOD}).text
        v1 = next(r for r in service_report(app, "p-t1").rows if r.unit == "v1")
        assert f"巡查次数 {v1.patrols_done}，应巡查次数 {v1.patrols_required}" in patrols
        assert town.get("/ui/assessment/charts/pie.svg").status_code == 404


def test_the_downloads_hold_the_same_rows(app: App, site: str) -> None:
    report = service_report(app, "p-t1")
    rendered = render(report, "csv")
    assert isinstance(rendered, str)
    want = list(csv.reader(io.StringIO(rendered.lstrip("\ufeff"))))
    with signed_in(site, "p-t1") as town:
        got = town.get("/ui/assessment.csv", params={"period": PERIOD})
        assert got.status_code == 200
        assert got.headers["content-type"] == "text/csv; charset=utf-8"
        disposition = got.headers["content-disposition"]
        assert disposition == 'attachment; filename="assessment-2026-09-01-2026-09-30.csv"'
        rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
        assert rows == want
        assert [r[0] for r in rows[1:]] == ["t1", "v1", "g1"]
        score = rows[0].index("得分")
        assert [float(r[score]) for r in rows[1:]] == [r.score for r in report.rows]

        book = town.get("/ui/assessment.xlsx", params={"period": PERIOD})
        assert book.status_code == 200
        assert book.headers["content-type"] == (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        assert book.headers["content-disposition"].endswith('.xlsx"')
        sheet = load_workbook(io.BytesIO(book.content)).active
        assert sheet is not None
        cells = list(sheet.iter_rows(values_only=True))
        assert [str(c) for c in cells[0]] == want[0]
        assert [r[0] for r in cells[1:]] == ["t1", "v1", "g1"]
        assert [r[score] for r in cells[1:]] == [r.score for r in report.rows]


def test_a_town_sees_none_of_another_towns_units(app: App, site: str) -> None:
    with signed_in(site, "p-t2") as other:
        page = other.get("/ui/assessment", params={"period": PERIOD})
        assert list(table(page)) == ["t2", "v3"]
        assert "甲村" not in page.text and "一镇" not in page.text
        for name in CHARTS:
            svg = other.get(f"/ui/assessment/charts/{name}.svg", params={"period": PERIOD}).text
            assert "（v3）" in svg and "甲村" not in svg and "（t1）" not in svg
        got = other.get("/ui/assessment.csv", params={"period": PERIOD})
        assert got.status_code == 200
        rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
        assert [r[0] for r in rows[1:]] == ["t2", "v3"]
        book = other.get("/ui/assessment.xlsx", params={"period": PERIOD})
        assert book.status_code == 200
        sheet = load_workbook(io.BytesIO(book.content)).active
        assert sheet is not None
        assert [r[0] for r in sheet.iter_rows(min_row=2, values_only=True)] == ["t2", "v3"]
    with signed_in(site, "p-t1") as town:
        mine = town.get("/ui/assessment", params={"period": PERIOD}).text
        assert "丙村" not in mine and "二镇" not in mine


def test_signed_out_goes_to_the_sign_in_page(site: str) -> None:
    with httpx.Client(base_url=site, timeout=30) as anonymous:
        for path in (
            "/ui/assessment",
            "/ui/assessment.csv",
            "/ui/assessment.xlsx",
            "/ui/assessment/charts/scores.svg",
        ):
            answer = anonymous.get(path, params={"period": PERIOD})
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/ui/login?next=/ui/assessment")


def test_a_bad_period_is_a_422_page_naming_the_period(site: str) -> None:
    with signed_in(site, "p-t1") as town:
        for bad in ("2026-13", "2026-Q5", "九月", "x" * 300):
            for path in (PAGE, "/ui/assessment.xlsx", "/ui/assessment/charts/scores.svg"):
                answer = town.get(path, params={"period": bad})
                assert answer.status_code == 422, (path, bad)
                assert answer.headers["content-type"].startswith("text/html")
                assert "考核期间（period）" in answer.text
                assert "data-unit" not in answer.text and "Traceback" not in answer.text


def test_a_unit_name_with_a_script_is_text(site: str) -> None:
    with signed_in(site, "p-t1") as town:
        page = town.get("/ui/assessment", params={"period": PERIOD})
        assert "甲村&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "<script>" not in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        svg = town.get("/ui/assessment/charts/scores.svg", params={"period": PERIOD}).text
        assert "<script>" not in svg and "甲村&lt;script&gt;" in svg
