"""The assessment dashboard's data: SVG charts, CSV and XLSX of the report, named
periods, and the report scoped to a viewer's units."""

from __future__ import annotations

import csv
import datetime as dt
import io
import xml.etree.ElementTree as ET

import pytest
from openpyxl import load_workbook

from engine.app import App
from engine.assessment import AssessmentConfig, Report, UnitRow, render
from engine.assessment.charts import CHARTS, render_chart
from engine.assessment.config import COMPONENTS
from engine.assessment.periods import period_dates
from engine.errors import InvalidData, InvalidDateRange, UnknownUnit

SVG = "{http://www.w3.org/2000/svg}"
SEPT = (dt.date(2026, 9, 1), dt.date(2026, 9, 30))
NASTY = '<script>alert("x")</script> & 村'


def report_of(rows: list[UnitRow]) -> Report:
    return Report(SEPT[0], SEPT[1], None, AssessmentConfig(), rows)


def sample() -> Report:
    town = UnitRow("t", "八桥镇", "town", 1, score=92.5, patrols_done=7, patrols_required=8)
    town.overdue_by_state = {"discovered": 3}
    town.escalations = 2
    village = UnitRow("v", NASTY, "village", 2, score=-4.0, patrols_done=1, patrols_required=4)
    for row in (town, village):
        row.components = {c: {"value": 0, "weight": 0.0, "points": 0.0} for c in COMPONENTS}
    return report_of([town, village])


def texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


@pytest.mark.parametrize("name", list(CHARTS))
def test_every_chart_is_svg_that_parses_with_one_bar_per_unit_and_series(name: str) -> None:
    svg = render_chart(sample(), name)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    bars = [g for g in root.iter(f"{SVG}g")]
    assert len(bars) == 2  # one group per unit
    per_unit = len(CHARTS[name].series)
    assert all(len(list(g.iter(f"{SVG}rect"))) == per_unit for g in bars)
    assert any("2026-09-01 至 2026-09-30" in t for t in texts(svg))


def test_a_unit_name_is_text_in_the_picture_never_markup() -> None:
    svg = render_chart(sample(), "scores")
    root = ET.fromstring(svg)
    assert not list(root.iter(f"{SVG}script")) and not list(root.iter("script"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    tooltips = ["".join(t.itertext()) for t in root.iter(f"{SVG}title")]
    assert any(t.startswith(NASTY) for t in tooltips)  # the whole name, as text


def test_values_place_the_bars_and_a_negative_score_grows_left() -> None:
    svg = render_chart(sample(), "scores")
    rects = [r for g in ET.fromstring(svg).iter(f"{SVG}g") for r in g.iter(f"{SVG}rect")]
    town, village = (float(r.get("width", "0")) for r in rects)
    assert town > village > 0
    assert float(rects[1].get("x", "0")) < float(rects[0].get("x", "0"))  # left of zero
    assert "92.50" in texts(svg) and "-4" in texts(svg)


def test_an_unknown_chart_is_refused() -> None:
    with pytest.raises(InvalidData):
        render_chart(sample(), "pie")


def test_csv_has_a_header_and_one_row_per_unit() -> None:
    text = render(sample(), "csv")
    assert isinstance(text, str) and text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0][:3] == ["单位编码", "单位", "级别"] and rows[0][-1] == "得分"
    assert [r[1] for r in rows[1:]] == ["八桥镇", NASTY]
    assert [r[-1] for r in rows[1:]] == ["92.5", "-4.0"]


def test_xlsx_opens_with_openpyxl_and_holds_the_rows() -> None:
    data = render(sample(), "xlsx")
    assert isinstance(data, bytes)
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][1] == "单位" and len(rows) == 3
    assert [r[1] for r in rows[1:]] == ["八桥镇", NASTY]
    assert rows[1][-1] == 92.5


@pytest.mark.parametrize(
    ("period", "first", "last"),
    [
        ("2026", dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
        ("2026-02", dt.date(2026, 2, 1), dt.date(2026, 2, 28)),
        ("2028-02", dt.date(2028, 2, 1), dt.date(2028, 2, 29)),
        ("2026-Q3", dt.date(2026, 7, 1), dt.date(2026, 9, 30)),
        ("2026-q4", dt.date(2026, 10, 1), dt.date(2026, 12, 31)),
    ],
)
def test_named_periods(period: str, first: dt.date, last: dt.date) -> None:
    assert period_dates(period) == (first, last)


@pytest.mark.parametrize("bad", ["2026-13", "2026-Q5", "26", "September", "2026-09-01"])
def test_a_bad_period_is_named(bad: str) -> None:
    with pytest.raises(InvalidData) as refused:
        period_dates(bad)
    assert "period" in refused.value.details["fields"]


def test_dates_instead_of_a_period() -> None:
    assert period_dates(None, *SEPT) == SEPT
    with pytest.raises(InvalidData):
        period_dates(None, SEPT[0], None)
    with pytest.raises(InvalidData):
        period_dates("2026", *SEPT)
    with pytest.raises(InvalidDateRange):
        period_dates(None, SEPT[1], SEPT[0])


def test_the_report_for_a_viewer_holds_only_its_units(app: App) -> None:
    config = AssessmentConfig()
    town = app.assessment.report(*SEPT, config, viewer="p-js-office")
    codes = [r.unit for r in town.rows]
    assert codes and all(c.startswith("ddk-js") for c in codes)
    everything = app.assessment.report(*SEPT, config)
    assert {r.unit for r in everything.rows} > set(codes)
    with pytest.raises(UnknownUnit):
        app.assessment.report(*SEPT, config, unit="ddk-bq", viewer="p-js-office")
    village = app.assessment.report(*SEPT, config, level="village", viewer="p-js-office")
    svg = render_chart(village, "patrols")
    assert len(list(ET.fromstring(svg).iter(f"{SVG}g"))) == len(village.rows) > 0
