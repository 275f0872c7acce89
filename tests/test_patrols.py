"""Patrols: periods, the rules file, obligations on the timer loop, the ledger, the CLI.

No test sleeps: the clock is a FixedClock moved by the test, and the sweep
(``app.timers.run_due``) and the dispatcher are called directly.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from engine.app import App
from engine.cli import main
from engine.clock import FixedClock
from engine.errors import InvalidData, InvalidPeriod, NotPermitted
from engine.patrols import PatrolRulesError, UnknownPatrol
from engine.patrols.periods import Every, following, parse_every, period_of, period_starting
from engine.patrols.rules import parse_rules
from engine.store.tables import (
    notifications,
    patrol_cases,
    patrol_missed,
    patrol_periods,
    patrol_rules,
    timers,
)
from engine.timers import TimerService
from tests.support.databases import Database
from tests.support.farmland import CASE_DATA, local
from tests.support.paths import ROOT
from tests.support.patrolling import RULES, VILLAGES, Recorder, write_rules
from tests.support.queries import rows

TZ = "Asia/Shanghai"
MONDAY = local(2026, 9, 14, 8, 0)  # the week of Mon 14 – Sun 20 September 2026


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MONDAY)


def patrol_timers(app: App, status: str = "pending") -> list[tuple[str, str, int | None, datetime]]:
    return sorted(
        (t.rule_id, t.state, t.rung, t.due_at)
        for t in rows(app, timers, kind="patrol", status=status)
    )


# ---------------------------------------------------------------- periods


def test_weeks_run_monday_to_sunday_in_the_time_zone() -> None:
    week = Every("week")
    p = period_of(week, local(2026, 9, 16, 12), TZ)
    assert (p.first_day, p.last_day) == (date(2026, 9, 14), date(2026, 9, 20))
    assert p.start == datetime(2026, 9, 13, 16, tzinfo=UTC)  # 00:00 in Shanghai
    assert p.end == datetime(2026, 9, 20, 16, tzinfo=UTC)
    assert p.label == "2026-09-14~09-20" and p.label_zh == "9月14日至9月20日"
    # the last second of Sunday and the first of Monday, in local time
    assert period_of(week, local(2026, 9, 20, 23, 59, 59), TZ) == p
    assert period_of(week, local(2026, 9, 21), TZ) == following(week, p, TZ)
    # a week across a month end and across the year end
    assert period_of(week, local(2026, 9, 30), TZ).label == "2026-09-28~10-04"
    year_end = period_of(week, local(2026, 12, 31, 23), TZ)
    assert year_end.label == "2026-12-28~2027-01-03"
    assert following(week, year_end, TZ).first_day == date(2027, 1, 4)


def test_months_and_runs_of_days() -> None:
    month = parse_every("month")
    dec = period_of(month, local(2026, 12, 31, 23, 59), TZ)
    assert (dec.first_day, dec.last_day, dec.label) == (
        date(2026, 12, 1),
        date(2026, 12, 31),
        "2026-12",
    )
    assert dec.end == datetime(2026, 12, 31, 16, tzinfo=UTC)
    jan = following(month, dec, TZ)
    assert (jan.first_day, jan.last_day, jan.label_zh) == (
        date(2027, 1, 1),
        date(2027, 1, 31),
        "2027年1月",
    )
    feb = period_starting(month, date(2028, 2, 10), TZ)
    assert feb.last_day == date(2028, 2, 29)  # leap year
    assert following(month, period_starting(month, date(2027, 1, 31), TZ), TZ).last_day == date(
        2027, 2, 28
    )
    fortnight = parse_every("14 days")
    assert parse_every("14d") == fortnight and str(fortnight) == "14d"
    # anchored on Monday 2000-01-03, so `7 days` is the same as `week`
    assert period_of(parse_every("7 days"), local(2026, 9, 16), TZ) == period_of(
        Every("week"), local(2026, 9, 16), TZ
    )
    p = period_of(fortnight, local(2026, 12, 30), TZ)
    assert (p.last_day - p.first_day).days == 13 and (p.first_day - date(2000, 1, 3)).days % 14 == 0
    assert p.contains(local(2026, 12, 30)) and following(fortnight, p, TZ).start == p.end
    for bad in ("weekly", "0 days", 7, "fortnight"):
        with pytest.raises(InvalidPeriod):
            parse_every(bad)


# ---------------------------------------------------------------- rules file


def test_a_rules_file_with_mistakes_reports_every_one_with_its_position() -> None:
    text = """\
patrols:
  - level: vilage
    every: weekly
    times: 0
    roles: [village.member, villager]
    remind: [8d]
    color: red
  - level: town
    every: month
    roles: [town.leader]
    remind: [soon]
    escalate:
      - after: 0m
        notify: [town.leadr.x]
        template: no_such_template
      - notify: [district.office]
  - level: town
    every: month
    roles: [town.office]
"""
    known = {"patrol_missed", "patrol_reminder"}
    with pytest.raises(PatrolRulesError) as info:
        parse_rules(text, "rules.yaml", TZ, lambda n: None if n in known else f"no {n!r}")
    lines = str(info.value).splitlines()
    expected = [
        "rules.yaml:2:12: error: patrols[0].level: expected one of district, town, village, "
        "group, got text ('vilage'); did you mean 'village'?",
        "rules.yaml:3:12: error: patrols[0].every: expected 'week', 'month' or 'N days'",
        "rules.yaml:4:12: error: patrols[0].times: expected a whole number ≥ 1, got a number (0)",
        "rules.yaml:5:29: error: patrols[0].roles[1]: bad role reference 'villager'",
        "rules.yaml:7:5: error: patrols[0].color: unknown key 'color'",
        "rules.yaml:11:14: error: patrols[1].remind[0]: cannot read duration 'soon'",
        "rules.yaml:14:18: error: patrols[1].escalate[0].notify[0]: bad role reference",
        "rules.yaml:15:19: error: patrols[1].escalate[0].template: no 'no_such_template'",
        "rules.yaml:16:9: error: patrols[1].escalate[1]: missing required key 'after'",
        "rules.yaml:17:5: error: patrols[2]: a second rule for level 'town' every 'month'",
    ]
    for prefix in expected:
        assert any(line.startswith(prefix) for line in lines), (prefix, lines)
    # a reminder must fall inside the period (checked once `every` is readable)
    with pytest.raises(PatrolRulesError, match=r"2:69: error: patrols\[0\].remind: reminder '8d'"):
        parse_rules("patrols:\n  - {level: village, every: week, roles: [village.member], "
                    "remind: [8d]}\n", "r.yaml", TZ)  # fmt: skip


def test_the_bundled_rules_file_loads(app: App) -> None:
    summary = app.patrols.load_rules(ROOT / "config" / "patrols.yaml")
    assert summary.added == ["village-week", "town-month"]
    with app.engine.connect() as conn:
        rules = {r.id: r for r in app.patrols.obligations.active_rules(conn)}
    assert rules["village-week"].times == 1 and rules["town-month"].every.kind == "month"
    assert [r.id for r in rows(app, patrol_rules, "id")] == ["town-month", "village-week"]


# ---------------------------------------------------------------- obligations


def test_loading_rules_writes_this_and_the_next_period(app: App, tmp_path: Path) -> None:
    app.patrols.load_rules(write_rules(tmp_path))
    assert patrol_timers(app) == sorted(
        [
            ("village-week", "remind", None, local(2026, 9, 20)),
            ("village-week", "close", None, local(2026, 9, 21)),
            ("village-week", "escalate", 0, local(2026, 9, 21)),
            ("village-week", "remind", None, local(2026, 9, 27)),
            ("village-week", "close", None, local(2026, 9, 28)),
            ("village-week", "escalate", 0, local(2026, 9, 28)),
            ("town-month", "close", None, local(2026, 10, 1)),
            ("town-month", "escalate", 0, local(2026, 10, 1)),
            ("town-month", "close", None, local(2026, 11, 1)),
            ("town-month", "escalate", 0, local(2026, 11, 1)),
        ]
    )
    open_rows = rows(app, patrol_periods, "unit_code", rule_id="village-week")
    assert [r.unit_code for r in open_rows] == VILLAGES
    assert {(r.period_start, r.required, r.done, r.status) for r in open_rows} == {
        (local(2026, 9, 14), 1, 0, "open")
    }
    again = app.patrols.load_rules(write_rules(tmp_path))
    assert again.unchanged == ["village-week", "town-month"] and again.added == []
    assert len(patrol_timers(app)) == 10


def test_a_village_that_skipped_a_week_is_reminded_then_its_town_leader_told(
    app: App, clock: FixedClock, tmp_path: Path
) -> None:
    memo = Recorder()
    app.dispatcher.channels = {"memo": memo}
    app.patrols.load_rules(write_rules(tmp_path))
    clock.set(local(2026, 9, 15, 10))
    app.patrols.ledger.record("ddk-bq-xh", "p-bq-xh-member1", started=local(2026, 9, 15, 9))
    clock.set(local(2026, 9, 16, 10))  # a group head's patrol counts for the village
    app.patrols.ledger.record("ddk-js-bh-1", "p-js-bh-1-member")

    clock.set(local(2026, 9, 19, 23, 59))
    assert app.timers.run_due() == []
    clock.set(local(2026, 9, 20))  # Sunday 00:00, one day before the week ends
    fired = app.timers.run_due()
    assert [(f.kind, f.state, f.outcome) for f in fired] == [("patrol", "remind", "fired")]
    assert fired[0].detail == "village-week 2026-09-14~09-20: 5 unit(s) reminded"
    app.dispatcher.run_once()
    assert memo.to("p-bq-xh-member1") == [] and memo.to("p-js-bh-leader") == []
    [reminder] = memo.to("p-bq-sl-leader")
    assert reminder.subject == "【耕保巡查提醒】胜利村本周期（9月14日至9月20日）尚需巡查1次"
    assert "大渡口区 / 八桥镇 / 胜利村" in reminder.body and "距周期结束还有：1天" in reminder.body
    assert len(reminder.short) <= 70 and reminder.case_id is None
    assert memo.to("p-bq-leader") == []  # the town hears nothing before the week ends

    clock.set(local(2026, 9, 21, 0, 0, 5))  # Monday: the week closed unfulfilled
    fired = app.timers.run_due()
    assert [(f.state, f.rung) for f in fired] == [("close", None), ("escalate", 0)]
    assert fired[0].detail == "village-week 2026-09-14~09-20: 2 met, 5 missed"
    facts = rows(app, patrol_missed, "unit_code")
    assert [(f.unit_code, f.done, f.required, f.level) for f in facts] == [
        (v, 0, 1, 1) for v in ["ddk-bq-fs", "ddk-bq-sl", "ddk-js-lh", "ddk-td-jh", "ddk-td-sp"]
    ]
    assert {(f.period_start, f.period_end) for f in facts} == {
        (local(2026, 9, 14), local(2026, 9, 21))
    }
    app.dispatcher.run_once()
    told = memo.to("p-bq-leader")
    assert sorted(m.subject for m in told) == [
        "【耕保漏巡】丰收村9月14日至9月20日巡查0次，未达到规定的1次",
        "【耕保漏巡】胜利村9月14日至9月20日巡查0次，未达到规定的1次",
    ]
    assert all("已超时" not in m.body and len(m.short) <= 70 for m in told)
    assert [m.subject[:6] for m in memo.to("p-js-leader")] == ["【耕保漏巡】"]

    # fired exactly once: nothing more now, and the periods after exist
    assert app.timers.run_due() == []
    assert ("village-week", "close", None, local(2026, 10, 5)) in patrol_timers(app)
    next_week = rows(app, patrol_periods, period_start=local(2026, 9, 21))
    assert len([r for r in next_week if r.rule_id == "village-week"]) == len(VILLAGES)


def test_a_crash_mid_sweep_leaves_the_patrol_timers_to_fire_once_later(
    app: App, clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.patrols.load_rules(write_rules(tmp_path))
    clock.set(local(2026, 9, 21, 0, 1))
    obligations = app.patrols.obligations
    real = obligations._close

    class ProcessKilled(BaseException):
        """Not an Exception: the process dies, it is not one timer failing (that one
        would be recorded as failed and the batch would go on)."""

    def crash(*args: Any, **kwargs: Any) -> str:
        real(*args, **kwargs)
        raise ProcessKilled

    monkeypatch.setattr(obligations, "_close", crash)
    with pytest.raises(ProcessKilled):
        app.timers.run_due()
    assert rows(app, patrol_missed) == [] and rows(app, notifications) == []
    monkeypatch.setattr(obligations, "_close", real)
    other = TimerService(app.engine, app.cases, clock, worker="other")
    other.handlers["patrol"] = obligations.fire
    fired = other.run_due()
    assert [(f.state, f.rung) for f in fired] == [
        ("remind", None),  # late, but once
        ("close", None),
        ("escalate", 0),
    ]
    assert app.timers.run_due() == [] and other.run_due() == []
    assert len(rows(app, patrol_missed)) == len(VILLAGES)
    reminded = [n for n in rows(app, notifications) if n.kind == "reminder"]
    assert sorted(n.unit_code for n in reminded) == sorted(VILLAGES)
    assert {n.dedupe_key.count(":") for n in reminded} == {2}


def test_month_and_year_ends_on_the_timer_loop(app: App, clock: FixedClock, tmp_path: Path) -> None:
    clock.set(local(2026, 12, 15, 9))
    app.patrols.load_rules(write_rules(tmp_path))
    clock.set(local(2026, 12, 31, 15))
    app.patrols.ledger.record("ddk-bq", "p-bq-office")  # the town office spot-checks
    app.patrols.ledger.record("ddk-bq-xh-2", "p-bq-leader")  # the town head in a village
    bq = rows(app, patrol_periods, rule_id="town-month", unit_code="ddk-bq")
    assert [(r.done, r.required) for r in bq] == [(2, 1)]
    xh = rows(app, patrol_periods, rule_id="village-week", unit_code="ddk-bq-xh")
    assert {r.done for r in xh} == {0}  # a town head's patrol is not the village's
    clock.set(local(2027, 1, 1, 0, 0, 1))
    details = [f.detail for f in app.timers.run_due() if f.state == "close"]
    assert details == [
        "village-week 2026-12-14~12-20: 0 met, 7 missed",
        "village-week 2026-12-21~12-27: 0 met, 7 missed",
        "town-month 2026-12: 1 met, 7 missed",
    ]
    clock.set(local(2027, 1, 4, 0, 0, 1))
    details = [f.detail for f in app.timers.run_due() if f.state == "close"]
    assert details == ["village-week 2026-12-28~2027-01-03: 0 met, 7 missed"]
    pending = patrol_timers(app)
    assert ("town-month", "close", None, local(2027, 3, 1)) in pending  # Feb's, written in Jan
    assert ("village-week", "close", None, local(2027, 1, 18)) in pending
    jan = rows(app, patrol_periods, rule_id="town-month", period_start=local(2027, 1, 1))
    assert len(jan) == 8 and {r.period_end for r in jan} == {local(2027, 2, 1)}


def test_a_week_with_a_make_up_working_day(app: App, clock: FixedClock, tmp_path: Path) -> None:
    # Sunday 2026-09-20 is a make-up working day (调休) before the National Day holidays.
    rules = RULES.replace("remind: [1d]", 'remind: ["1 working day"]')
    app.patrols.load_rules(write_rules(tmp_path, rules))
    reminders = [t for t in patrol_timers(app) if t[1] == "remind"]
    # 24:00 of the working day before the week's last day — Friday — leaving the
    # make-up Sunday to patrol; the week itself still runs Monday to Sunday.
    # The week after: Friday 25 September is the Mid-Autumn Festival (a holiday), so
    # its last working day is Thursday.
    assert reminders == [
        ("village-week", "remind", None, local(2026, 9, 19)),
        ("village-week", "remind", None, local(2026, 9, 25)),
    ]
    clock.set(local(2026, 9, 20, 15))  # the make-up Sunday
    view = app.patrols.ledger.record("ddk-bq-sl", "p-bq-sl-member1")
    assert view.credited == [
        {"rule": "village-week", "unit": "ddk-bq-sl", "period": "2026-09-14~09-20"}
    ]
    clock.set(local(2026, 9, 28, 0, 0, 1))
    app.timers.run_due()
    # the National Day week: its last working day is Wednesday 30 September
    assert ("village-week", "remind", None, local(2026, 10, 1)) in patrol_timers(app)
    sl = rows(app, patrol_periods, "period_start", rule_id="village-week", unit_code="ddk-bq-sl")
    assert [(r.period_start, r.status) for r in sl][:2] == [
        (local(2026, 9, 14), "met"),
        (local(2026, 9, 21), "missed"),
    ]


def test_who_counts_and_late_entries(app: App, clock: FixedClock, tmp_path: Path) -> None:
    app.patrols.load_rules(write_rules(tmp_path))
    clock.set(local(2026, 9, 17, 10))
    office = app.patrols.ledger.record("ddk-bq-sl", "p-ddk-office1")  # may record; counts nothing
    assert office.credited == []
    twice = [app.patrols.ledger.record("ddk-bq-fs-1", "p-bq-fs-1-member") for _ in range(2)]
    assert [v.credited[0]["unit"] for v in twice] == ["ddk-bq-fs", "ddk-bq-fs"]
    fs = rows(app, patrol_periods, rule_id="village-week", unit_code="ddk-bq-fs")
    assert [(r.done, r.required) for r in fs] == [(2, 1)]
    clock.set(local(2026, 9, 22, 9))
    app.timers.run_due()
    late = app.patrols.ledger.record(
        "ddk-bq-sl", "p-bq-sl-member1", started=local(2026, 9, 18, 9), ended=local(2026, 9, 18, 11)
    )
    assert late.credited == []  # the week is closed: the ledger keeps it, the fact stands
    sl = rows(app, patrol_missed, unit_code="ddk-bq-sl")
    assert [(f.done, f.required) for f in sl] == [(0, 1)]


def test_reloading_rules_changes_retires_and_voids(
    app: App, clock: FixedClock, tmp_path: Path
) -> None:
    app.patrols.load_rules(write_rules(tmp_path))
    clock.set(local(2026, 9, 16, 9))
    changed = RULES.replace("    times: 1\n", "    times: 2\n").split("  - level: town")[0]
    summary = app.patrols.load_rules(write_rules(tmp_path, changed))
    assert (summary.changed, summary.deactivated) == (["village-week"], ["town-month"])
    assert {t[0] for t in patrol_timers(app)} == {"village-week"}
    assert {r.required for r in rows(app, patrol_periods, rule_id="village-week")} == {2}
    assert {r.status for r in rows(app, patrol_periods, rule_id="town-month")} == {"void"}
    assert len(rows(app, timers, kind="patrol", status="cancelled")) == 10


# ---------------------------------------------------------------- the ledger


def test_recording_checks_the_grid_and_the_data(app: App, clock: FixedClock) -> None:
    with pytest.raises(NotPermitted, match="holds no role on this unit's chain"):
        app.patrols.ledger.record("ddk-bq-xh", "p-js-bh-member1")
    with pytest.raises(NotPermitted, match="unknown person"):
        app.patrols.ledger.record("ddk-bq-xh", "nobody")
    with pytest.raises(InvalidData) as info:
        app.patrols.ledger.record(
            "ddk-bq-xh",
            "p-bq-xh-member1",
            started=local(2026, 9, 15),
            ended=local(2026, 9, 14),
            route=[[106.5, 29.5], [200, 29.5]],
            area_m2=-1,
        )
    assert set(info.value.problems) == {"started", "ended", "route", "area_m2"}
    view = app.patrols.ledger.record(
        "ddk-bq-xh",
        "p-bq-xh-member1",
        started=local(2026, 9, 14, 7),
        ended=local(2026, 9, 14, 8),
        route=[[106.48, 29.48], [106.49, 29.481]],
        area_m2=35000,
        findings="三组王家湾有新开挖痕迹",
        suspected=[{"kind": "挖湖造景", "location": [106.485, 29.4805]}],
        attachments=["IMG_0001.jpg"],
    )
    assert view.credited == []  # no rules loaded: nothing to count for
    again = app.patrols.ledger.get(view.id, viewer="p-bq-leader")
    assert again.as_dict() == {**view.as_dict(), "credited": []}
    with pytest.raises(NotPermitted):
        app.patrols.ledger.get(view.id, viewer="p-js-bh-member1")
    with pytest.raises(UnknownPatrol):
        app.patrols.ledger.get("P-nope")


def test_a_finding_opens_a_case_in_one_step(app: App, clock: FixedClock) -> None:
    patrol = app.patrols.ledger.record("ddk-bq-xh", "p-bq-xh-member1", findings="疑似违法建房")
    case = app.patrols.ledger.open_case(
        patrol.id, "farmland_violation", "p-bq-xh-1-member", CASE_DATA, unit="ddk-bq-xh-1"
    )
    assert case.extra["patrol"] == patrol.id and case.unit == "ddk-bq-xh-1"
    [created] = app.cases.history(case.id)
    assert created.trigger == "create" and created.payload["origin"] == {"patrol": patrol.id}
    assert app.cases.verify(case.id).ok
    assert app.patrols.ledger.get(patrol.id).cases == [case.id]
    with pytest.raises(InvalidData, match="is not 'ddk-bq-xh' or a unit below it"):
        app.patrols.ledger.open_case(patrol.id, "farmland_violation", "p-bq-leader", CASE_DATA,
                                     unit="ddk-bq-sl")  # fmt: skip
    # an unknown patrol refuses the whole creation: no case without its link
    with pytest.raises(InvalidData, match="unknown patrol"):
        app.cases.create_case(
            "farmland_violation", "ddk-bq-xh", "p-bq-xh-member1", CASE_DATA,
            origin={"patrol": "P-nope"},
        )  # fmt: skip
    assert [c.id for c in app.cases.list_cases()] == [case.id]
    assert len(rows(app, patrol_cases)) == 1
    other = app.cases.create_case("farmland_violation", "ddk-bq-xh", "p-bq-xh-member1", CASE_DATA)
    app.patrols.ledger.link(patrol.id, other.id)
    app.patrols.ledger.link(patrol.id, other.id)
    assert app.patrols.ledger.get(patrol.id).cases == sorted([case.id, other.id])


def test_list_and_export_the_ledger(app: App, clock: FixedClock) -> None:
    for day, unit, person in [
        (14, "ddk-bq-xh", "p-bq-xh-member1"),
        (15, "ddk-bq-sl-2", "p-bq-sl-2-member"),
        (16, "ddk-js-bh", "p-js-bh-member1"),
        (21, "ddk-bq-xh", "p-bq-xh-member2"),
    ]:
        clock.set(local(2026, 9, day, 18))
        app.patrols.ledger.record(
            unit, person, started=local(2026, 9, day, 9), ended=local(2026, 9, day, 10, 30)
        )
    ledger = app.patrols.ledger
    assert [v.unit for v in ledger.list("ddk-bq", date(2026, 9, 14), date(2026, 9, 20))] == [
        "ddk-bq-xh",
        "ddk-bq-sl-2",
    ]
    assert len(ledger.list(date_from=date(2026, 9, 16))) == 2
    assert [v.unit for v in ledger.list(viewer="p-bq-sl-member1")] == ["ddk-bq-sl-2"]
    assert len(ledger.list(viewer="p-bq-leader")) == 4  # also a district grid member
    assert ledger.list(viewer="p-js-bh-1-member") == []

    from engine.patrols.export import HEADERS, ledger_csv, ledger_rows, ledger_xlsx

    views = ledger.list(date_from=date(2026, 9, 14), date_to=date(2026, 9, 20))
    text = ledger_csv(views, TZ)
    assert text.startswith("\ufeff序号,巡查编号,巡查单位,单位编码,巡查人,开始时间,结束时间")
    lines = text.lstrip("\ufeff").splitlines()
    assert len(lines) == 4
    assert lines[1].split(",")[2:8] == [
        "新华村",
        "ddk-bq-xh",
        "秦国庆",
        "2026-09-14 09:00",
        "2026-09-14 10:30",
        "90",
    ]
    sheet = load_workbook(io.BytesIO(ledger_xlsx(views, TZ))).active
    assert sheet is not None
    got = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert tuple(got[0]) == HEADERS
    expected = [[v if v != "" else None for v in r] for r in ledger_rows(views, TZ)]
    assert got[1:] == expected


# ---------------------------------------------------------------- the CLI


def cli(database: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        *args: str) -> tuple[int, str, str]:  # fmt: skip
    monkeypatch.setenv("GENGBAO_DATABASE_URL", database.url)
    monkeypatch.chdir(ROOT)
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_the_cli(
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    def run(*args: str) -> Any:
        status, out, err = cli(database, monkeypatch, capsys, *args)
        assert status == 0, err
        return json.loads(out) if "--json" in args else out

    run("grid", "load", "config/grid/dadukou.yaml")
    monday = "2026-09-14T08:00:00+08:00"
    loaded = run("--now", monday, "patrol", "rules", "load", "config/patrols.yaml", "--json")
    assert loaded["added"] == ["village-week", "town-month"]
    recorded = run(
        "--now", "2026-09-15T12:00:00+08:00",
        "patrol", "record", "--unit", "ddk-bq-xh", "--actor", "p-bq-xh-member1",
        "--findings", "巡查正常", "--route", "[[106.48, 29.48], [106.49, 29.48]]",
        "--started", "2026-09-15T09:00", "--ended", "2026-09-15T11:00", "--json",
    )  # fmt: skip
    assert recorded["started_at"] == "2026-09-15T01:00:00+00:00"  # local time by default
    assert recorded["credited"] == [
        {"rule": "village-week", "unit": "ddk-bq-xh", "period": "2026-09-14~09-20"}
    ]
    listed = run("patrol", "list", "--unit", "ddk-bq", "--from", "2026-09-14", "--json")
    assert [p["id"] for p in listed] == [recorded["id"]]
    exported = run("patrol", "export", "--from", "2026-09-14", "--to", "2026-09-20")
    assert exported.splitlines()[1].startswith(f"1,{recorded['id']},新华村,")
    out = tmp_path / "ledger.xlsx"
    run("patrol", "export", "--from", "2026-09-14", "--to", "2026-09-20", "--format", "xlsx",
        "-o", str(out))  # fmt: skip
    assert load_workbook(out).active is not None
    fired = run("--now", "2026-09-21T00:00:00+08:00", "timers", "run-due", "--json")
    assert [(f["kind"], f["state"], f["rung"]) for f in fired] == [
        ("patrol", "remind", None),
        ("patrol", "close", None),
        ("patrol", "escalate", 0),
        ("patrol", "escalate", 1),
    ][: len(fired)]
    assert {f["kind"] for f in fired} == {"patrol"} and len(fired) >= 3
    status = run("--now", "2026-09-21T09:00:00+08:00", "patrol", "status", "--unit", "ddk-bq",
                 "--json")  # fmt: skip
    assert {(s["rule"], s["unit"]) for s in status} >= {("village-week", "ddk-bq-xh")}
    bad = tmp_path / "bad.yaml"
    bad.write_text("patrols:\n  - {level: village, every: week}\n", encoding="utf-8")
    code, _, err = cli(database, monkeypatch, capsys, "patrol", "rules", "load", str(bad))
    assert code == 1 and f"{bad}:2:5: error: patrols[0]: missing required key 'roles'" in err


@pytest.mark.parametrize("name", ["patrol_reminder", "patrol_missed"])
def test_patrol_templates_fit_an_sms_at_their_longest(name: str) -> None:
    from notifications.templates import SMS_LIMIT, TemplateStore

    patrol = {
        "unit": {"code": "ddk-xsc-x", "name": "新山村街道建设路社区", "level": "village"},
        "unit_chain": "大渡口区 / 新山村街道 / 新山村街道建设路社区",
        "rule": "village-week",
        "level": "village",
        "every": "week",
        "period": "2026年12月28日至2027年1月3日",
        "period_start": "2026-12-27T16:00:00+00:00",
        "period_end": "2027-01-03T16:00:00+00:00",
        "done": 10,
        "required": 12,
        "due": "1月4日 00:00",
        "remaining": "1天",
        "overdue": "",
        "step": "remind",
        "rung": None,
    }
    context = {
        "kind": "reminder",
        "case": None,
        "event": None,
        "deadline": None,
        "patrol": patrol,
        "recipient": {"id": "p-x", "name": "欧阳晓明"},
        "link": "https://gengbao.example.org/patrols?unit=ddk-xsc-x",
    }
    out = TemplateStore().get(name).render(context)
    assert len(out["short"]) <= SMS_LIMIT, out["short"]
    assert "\n" not in out["subject"] and "建设路社区" in out["body"]


def test_the_public_surface() -> None:
    import engine.assessment
    import engine.patrols

    assert sorted(engine.patrols.__all__) == [
        "Every", "ImportResult", "KIND", "Ledger", "LoadSummary", "Obligations", "PatrolLinks",
        "PatrolRule", "PatrolRulesError", "PatrolView", "Patrols", "Period", "RulesFile",
        "SurveyFileError", "UnknownPatrol", "load_rules", "parse_every", "period_of",
    ]  # fmt: skip
    assert sorted(engine.assessment.__all__) == [
        "AssessmentConfig", "FORMATS", "Measure", "Report", "UnitRow", "assess",
        "list_findings", "load_config", "parse_config", "render",
    ]  # fmt: skip
    for module in (engine.patrols, engine.assessment):
        assert all(hasattr(module, name) for name in module.__all__)
