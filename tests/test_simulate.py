"""Simulation scenarios: read with positions and every problem at once, then run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.settings import Settings
from engine.simulate import load_scenario, simulate

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "workflows" / "scenarios" / "farmland_overdue.yaml"


def test_the_bundled_scenario_loads() -> None:
    scenario = load_scenario(BUNDLED)
    assert scenario.start == dt.datetime(2026, 9, 18, 2, 0, tzinfo=dt.UTC)
    assert (scenario.unit, scenario.actor) == ("ddk-bq-xh-1", "p-bq-xh-1-member")
    assert scenario.data["land_type"] == "永久基本农田"
    assert [step.event for step in scenario.steps] == [
        "stop_fail",
        None,
        "confirm",
        None,
        "file_case",
    ]
    assert scenario.steps[0].payload == {"stop_note": "当事人拒绝停工"}


def test_every_problem_is_reported_with_its_line_and_column(tmp_path: Path) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text(
        "case:\n"  # 1
        "  at: 2026-09-18T10:00:00\n"  # 2: no UTC offset
        "  unit: ddk-bq-xh-1\n"  # 3
        "  actr: p-1\n"  # 4: mistyped, and so 'actor' is missing
        "steps:\n"  # 5
        "  - {at: 2026-09-18T13:00:00+08:00, event: stop_fail}\n"  # 6: no actor
        "  - {at: tomorrow, evnt: stop}\n"  # 7
        "  - {at: 2026-09-18T11:00:00+08:00, payload: [x]}\n",  # 8: payload not a mapping
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_scenario(file)
    assert info.value.details["problems"] == [
        f"{file}:2:3: error: case: missing required key 'actor'",
        f"{file}:2:7: error: case.at: a date-time needs its UTC offset, e.g. +08:00",
        f"{file}:4:3: error: case.actr: unknown key 'actr'; did you mean 'actor'? "
        "(allowed: at, unit, actor, data)",
        f"{file}:6:5: error: steps[0]: an event needs an 'actor'",
        f"{file}:7:10: error: steps[1].at: expected a date-time like 2026-09-18T10:00:00+08:00, "
        "got text ('tomorrow')",
        f"{file}:7:20: error: steps[1].evnt: unknown key 'evnt'; did you mean 'event'? "
        "(allowed: at, event, actor, payload, action, args)",
        f"{file}:8:46: error: steps[2].payload: expected a mapping of field names, got a list",
    ]


def test_steps_out_of_time_order_are_refused_at_the_step(tmp_path: Path) -> None:
    file = tmp_path / "order.yaml"
    file.write_text(
        "case: {at: 2026-09-18T10:00:00+08:00, unit: u, actor: a}\n"
        "steps:\n"
        "  - {at: 2026-09-18T09:00:00+08:00}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"order\.yaml:3:10: error: steps\[0\]\.at: steps must"):
        load_scenario(file)


def test_the_bundled_scenario_runs_on_its_virtual_clock(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'unused.db'}", source=REPO / "config" / "gengbao.yaml"
    )
    lines = simulate(
        settings, REPO / "workflows" / "farmland_violation.yaml", load_scenario(BUNDLED)
    )
    rendered = [line.render("Asia/Shanghai") for line in lines]
    assert rendered[0].startswith("2026-09-18 Fri 10:00  event")
    assert any(
        text.startswith("2026-09-18 Fri 12:00  deadline    discovered: deadline passed")
        for text in rendered
    ), rendered
    assert any("confirm → district_handling" in text for text in rendered), rendered


def test_an_unanswered_supervision_escalates_in_the_bundled_scenario(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'unused.db'}", source=REPO / "config" / "gengbao.yaml"
    )
    scenario = load_scenario(REPO / "workflows" / "scenarios" / "farmland_supervision.yaml")
    lines = simulate(settings, REPO / "workflows" / "farmland_violation.yaml", scenario)
    what = [(line.what, line.text) for line in lines]
    assert (
        "action",
        "supervise by p-bq-leader: supervision 1 due 2026-09-22T16:00:00+00:00",
    ) in what
    kinds = [w for w, _ in what if w.startswith("supervision.")]
    assert kinds == ["supervision.reminder", "supervision.deadline", "supervision.escalation"]
    notices = [t for w, t in what if w == "notify" and "supervision" in t]
    assert notices == [
        "transition 'supervision_issued' → village.leader",
        "reminder 'supervision_reminder' → village.leader",
        "escalation 'supervision_overdue' → district.office",
    ]


def test_an_unknown_action_is_refused_at_its_step(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "case: {at: 2026-09-18T10:00:00+08:00, unit: u, actor: a}\n"
        "steps:\n"
        "  - {at: 2026-09-18T11:00:00+08:00, action: supervize, actor: a}\n"
        "  - {at: 2026-09-18T12:00:00+08:00, action: supervise}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as refused:
        load_scenario(path)
    problems = refused.value.details["problems"]
    assert any(
        ":3:" in p and "unknown action 'supervize'" in p and "supervise" in p for p in problems
    )
    assert any(":4:" in p and "an action needs an 'actor'" in p for p in problems)


def test_a_returned_transfer_and_a_late_party_in_the_bundled_scenario(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'unused.db'}", source=REPO / "config" / "gengbao.yaml"
    )
    scenario = load_scenario(REPO / "workflows" / "scenarios" / "farmland_together.yaml")
    lines = simulate(settings, REPO / "workflows" / "farmland_violation.yaml", scenario)
    what = [(line.what, line.text) for line in lines]
    acted = [t for w, t in what if w in ("action", "refused", "event")]
    assert acted[3:6] == [
        "transfer by p-bq-leader: transfer pending with ddk",
        "transfer_return by p-ddk-office1: returned: the case stays at ddk-bq-xh-1",
        "confirm → joint_enforcement (联合执法待立案) by p-bq-leader",
    ]
    assert acted[6].startswith("file_case by p-ddk-office1: trigger 'file_case' must wait")
    assert acted[-1] == "file_case → filed (已立案待决定) by p-ddk-office1"
    # Only the agriculture committee signed late: one reminder, one deadline, one rung.
    party = [w for w, _ in what if w.startswith("party.")]
    assert party == ["party.reminder", "party.deadline", "party.escalation"]
    assert ("notify", "escalation 'countersign_overdue' → district.office") in what
    assert ("notify", "reminder 'countersign_reminder' → district.dept_agri") in what


def test_the_bundled_spot_scenario_checks_late_and_closes_after_review(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'unused.db'}", source=REPO / "config" / "gengbao.yaml"
    )
    scenario = load_scenario(REPO / "workflows" / "scenarios" / "spot_month.yaml")
    lines = simulate(settings, REPO / "workflows" / "satellite_spot.yaml", scenario)
    rendered = [line.render("Asia/Shanghai") for line in lines]
    # the month's deadline: 24:00 on verify_by, then the town and, three days on, the district
    assert "2026-10-01 Thu 00:00  deadline    issued: deadline passed" in rendered, rendered
    assert (
        "2026-10-04 Sun 00:00  notify      escalation 'spot_supervise' → district.office"
        in rendered
    ), rendered
    events = [line.text for line in lines if line.what == "event"]
    assert [e.split(" by ")[0] for e in events[1:]] == [
        "check → checked (待认定)",
        "judge → town_handling (镇街处置)",
        "order_rectify → rectifying (整改中)",
        "rectified → review (区级审核)",
        "pass → closed (已销号)",
    ]
