"""Survey and satellite findings: CSV import (bad rows, all-or-nothing) and "missed by the grid"."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.app import App
from engine.assessment import list_findings
from engine.clock import FixedClock
from engine.patrols import SurveyFileError
from engine.patrols import survey as survey_module
from engine.patrols.survey import metres_per_degree
from engine.store.tables import survey_findings
from tests.support.farmland import CASE_DATA, local
from tests.support.patrolling import shifted

GOOD = "ref,unit,found_on,area_m2,lng,lat,note\n"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(local(2026, 9, 1, 9))


def write(tmp_path: Path, text: str, name: str = "survey.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def stored(app: App) -> list[Any]:
    with app.engine.connect() as conn:
        return list(conn.execute(sa.select(survey_findings).order_by(survey_findings.c.ref)))


def test_bad_rows_are_reported_by_line_and_good_rows_imported(app: App, tmp_path: Path) -> None:
    text = (
        GOOD
        + "TB-001,ddk-bq-xh,2026-09-10,120.5,106.48,29.48,新华村三组旁\n"  # line 2
        + "TB-002,ddk-nowhere,2026-09-10,,,,\n"  # 3: unknown unit
        + "TB-003,ddk-bq-sl,2026-02-30,,,,\n"  # 4: impossible date
        + ",ddk-bq-sl,2026-09-11,,,,\n"  # 5: no ref
        + "TB-005,ddk-bq-sl,2026-09-11,,106.5,,\n"  # 6: lng without lat
        + "TB-006,ddk-bq-sl,2026-09-11,many,106.5,95,\n"  # 7: two bad numbers
        + "\n"  # 8: blank, skipped
        + 'TB-009,ddk-bq-fs,2026/09/12,80,106.49,29.47,"两行\n的备注"\n'  # 9-10
        + "TB-001,ddk-bq-fs,2026-09-12,,,,\n"  # 11: repeated ref
        + "TB-012,ddk-bq-fs\n"  # 12: short row
    )
    result = app.patrols.import_survey(write(tmp_path, text), "卫片图斑")
    assert (result.imported, result.updated, result.unchanged) == (2, 0, 0)
    problems = [(p.line, p.message) for p in result.problems]
    assert problems == [
        (3, "unknown or inactive unit 'ddk-nowhere'"),
        (4, "found_on '2026-02-30' is not a date like 2026-09-18"),
        (5, "ref is empty"),
        (6, "lng and lat go together: give both or neither"),
        (7, "area_m2 'many' is not a number; lat '95' is out of range"),
        (11, "ref 'TB-001' is already on line 2"),
        (12, "2 cell(s), the header has 7; found_on is empty"),
    ]
    rows = stored(app)
    assert [(r.ref, r.unit_code, r.found_on, r.line, r.source) for r in rows] == [
        ("TB-001", "ddk-bq-xh", date(2026, 9, 10), 2, "卫片图斑"),
        ("TB-009", "ddk-bq-fs", date(2026, 9, 12), 9, "卫片图斑"),
    ]
    assert rows[1].note == "两行\n的备注" and rows[0].area_m2 == 120.5
    assert rows[0].found_until == local(2026, 9, 11)  # the end of the local day
    m_lng, m_lat = metres_per_degree(29.48)
    assert rows[0].m_per_deg_lng == pytest.approx(m_lng) and 96_000 < m_lng < 97_500
    assert 110_800 < m_lat < 110_900


def test_reimporting_is_idempotent_and_updates_changed_rows(app: App, tmp_path: Path) -> None:
    first = GOOD + "TB-1,ddk-bq-xh,2026-09-10,,,,a\nTB-2,ddk-bq-sl,2026-09-10,,,,b\n"
    assert app.patrols.import_survey(write(tmp_path, first)).imported == 2
    again = app.patrols.import_survey(write(tmp_path, first))
    assert (again.imported, again.updated, again.unchanged, again.problems) == (0, 0, 2, [])
    changed = first.replace(",b\n", ",b2\n")
    result = app.patrols.import_survey(write(tmp_path, changed))
    assert (result.imported, result.updated, result.unchanged) == (0, 1, 1)
    assert [r.note for r in stored(app)] == ["a", "b2"]


def test_chinese_titles_a_byte_order_mark_and_extra_columns(app: App, tmp_path: Path) -> None:
    text = (
        "\ufeff序号,图斑编号,所属单位,发现日期,面积,经度,纬度,备注\n"
        "1,WP-7,ddk-td-jh,2026-09-03,300,,,\n"
    )
    result = app.patrols.import_survey(write(tmp_path, text))
    assert result.imported == 1
    assert [(p.line, p.warning) for p in result.problems] == [(1, True)]  # 序号 ignored
    assert stored(app)[0].ref == "WP-7"


def test_files_that_cannot_be_imported_at_all(app: App, tmp_path: Path) -> None:
    with pytest.raises(SurveyFileError, match="missing column"):
        app.patrols.import_survey(write(tmp_path, "ref,unit,area_m2\nx,ddk,1\n"))
    bad = write(tmp_path, GOOD + "TB-1,ddk-bq-xh,2026-09-10,,,,新华\n", encoding="gbk")
    with pytest.raises(SurveyFileError, match=r"survey.csv:2: not UTF-8"):
        app.patrols.import_survey(bad)
    with pytest.raises(SurveyFileError, match="empty"):
        app.patrols.import_survey(write(tmp_path, ""))
    assert stored(app) == []


def test_a_crash_during_the_import_imports_nothing(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = survey_module._store

    def crash(*args: Any) -> None:
        real(*args)  # every row written, then the process dies before the commit
        raise RuntimeError("power cut")

    monkeypatch.setattr(survey_module, "_store", crash)
    text = GOOD + "".join(f"TB-{i},ddk-bq-xh,2026-09-10,,,,\n" for i in range(50))
    with pytest.raises(RuntimeError):
        app.patrols.import_survey(write(tmp_path, text))
    assert stored(app) == []


# ---------------------------------------------------------------- missed by the grid


def open_case(app: App, clock: FixedClock, when: Any, unit: str, **data: Any) -> str:
    clock.set(when)
    actor = {"ddk-bq-xh-1": "p-bq-xh-1-member"}.get(unit, f"p-{unit[4:]}-member1")
    return app.cases.create_case("farmland_violation", unit, actor, {**CASE_DATA, **data}).id


def test_matching_by_reference_and_by_distance(app: App, clock: FixedClock, tmp_path: Path) -> None:
    base = (106.50, 29.50)
    by_ref = open_case(app, clock, local(2026, 9, 2, 10), "ddk-bq-xh-1", case_no="WP-2026-17")
    near = open_case(app, clock, local(2026, 9, 3, 23, 59), "ddk-bq-sl", location=list(base))
    late = open_case(
        app, clock, local(2026, 9, 5, 0, 0), "ddk-bq-fs", location=list(shifted(*base, 1000))
    )
    open_case(app, clock, local(2026, 9, 2), "ddk-js-bh", location=list(shifted(*base, 2000)))

    def point(east: float, north: float = 0) -> str:
        lng, lat = shifted(*base, east, north)
        return f"{lng:.8f},{lat:.8f}"

    csv_text = GOOD + "\n".join(
        [
            "WP-2026-17,ddk-bq-xh,2026-09-10,,,,by reference (case in a group below)",
            f"S-30m,ddk-bq-sl,2026-09-03,,{point(0, 30)},opened 23:59 that day; 30 m",
            f"S-80m,ddk-bq-sl,2026-09-10,,{point(0, 80)},80 m: too far at 50 m",
            f"S-late,ddk-bq-fs,2026-09-04,,{point(1000, 10)},case opened the next day",
            f"S-town,ddk-bq,2026-09-10,,{point(0, -20)},a town-level finding; village case",
            f"S-other,ddk-bq-fs,2026-09-10,,{point(2000)},the case is in another town",
            "S-nopoint,ddk-bq-sl,2026-09-10,,,,no point and no reference",
        ]
    ) + "\n"  # fmt: skip
    assert app.patrols.import_survey(write(tmp_path, csv_text)).problems == []

    def status(radius: float, **kw: Any) -> dict[str, Any]:
        items = list_findings(app.engine, None, None, radius_m=radius, **kw)
        return {i["ref"]: [(h["case"], h["how"]) for h in i["found_by"]] for i in items}

    assert status(50) == {
        "S-30m": [(near, "distance")],
        "S-late": [],
        "WP-2026-17": [(by_ref, "ref")],
        "S-80m": [],
        "S-nopoint": [],
        "S-other": [],
        "S-town": [(near, "distance")],
    }
    assert status(100)["S-80m"] == [(near, "distance")]
    assert status(50)["S-late"] == [] and late
    missed = list_findings(
        app.engine, date(2026, 9, 4), date(2026, 9, 10), radius_m=50, unit="ddk-bq",
        missed_only=True,
    )  # fmt: skip
    assert [i["ref"] for i in missed] == ["S-late", "S-80m", "S-nopoint", "S-other"]
