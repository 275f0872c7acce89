"""My tasks: what a person can act on now, most urgent first, on the demo grid and a small
grid of our own; ``--overdue``; countersign, transfer and supervision rows read directly."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.app import App
from engine.clock import FixedClock
from engine.store.tables import case_parties, case_transfers, supervisions
from tests.support.acks import ACK_WORKFLOW, write_ack_workflow
from tests.support.databases import Database
from tests.support.farmland import CASE_DATA, REPORTER, farmland_app
from tests.support.paths import GENGBAO, ROOT

WORKFLOW = "farmland_violation"
XH1, XH2 = "ddk-bq-xh-1", "ddk-bq-xh-2"
VILLAGE_LEADER = "p-bq-xh-leader"
TOWN_LEADER = "p-bq-leader"


@pytest.fixture
def app(app: App) -> App:
    """The farmland App whose current workflow asks discovered and reported for 签收."""
    app.catalog.register_text(ACK_WORKFLOW, "farmland_violation.yaml")
    return app


def open_at(app: App, unit: str, actor: str = VILLAGE_LEADER) -> str:
    return app.cases.create_case(WORKFLOW, unit, actor, CASE_DATA).id


def to_reported(app: App, case_id: str) -> None:
    app.cases.submit_event(case_id, "stop_fail", VILLAGE_LEADER, {"stop_note": "拒不停工"})
    app.cases.submit_event(case_id, "report", VILLAGE_LEADER, {"report_note": "报镇街"})


def listed(app: App, actor: str, **options: Any) -> list[tuple[str, str]]:
    return [(t.case_id, t.kind) for t in app.tasks.for_actor(actor, **options)]


def test_a_village_member_and_a_town_leader_see_their_own_tasks(
    app: App, clock: FixedClock
) -> None:
    first = open_at(app, XH1)
    clock.advance(timedelta(minutes=5))
    second = open_at(app, XH2)
    clock.advance(timedelta(minutes=5))
    third = open_at(app, XH1)
    to_reported(app, third)
    # the group member of 一组 acts on 一组's discovered case only
    assert listed(app, REPORTER) == [(first, "ack")]
    # the village leader: both discovered cases, the older deadline first
    assert listed(app, VILLAGE_LEADER) == [(first, "ack"), (second, "ack")]
    # the town leader: the reported case (its acknowledgement first), nothing in discovered
    assert listed(app, TOWN_LEADER) == [(third, "ack")]
    [task] = app.tasks.for_actor(TOWN_LEADER)
    assert task.state == "reported" and task.unit == XH1 and task.unit_name == "新华村一组"
    assert task.deadline_local == "2026-09-18 12:10"  # reported at 10:10, acknowledge within 2h
    assert task.seconds_left == 2 * 3600
    triggers = [a["trigger"] for a in task.actions]
    assert triggers == ["ack", "dismiss", "confirm", "assign"]
    confirm = next(a for a in task.actions if a["trigger"] == "confirm")
    land = next(p for p in confirm["payload"] if p["name"] == "land_type")
    assert land["required"] is True and land["values"] == ["永久基本农田", "一般耕地", "其他"]
    # someone with no role that acts in either state has nothing
    assert listed(app, "p-ddk-agri") == []


def test_after_an_ack_the_assignee_acts_and_others_see_who_took_it(
    app: App, clock: FixedClock
) -> None:
    case_id = open_at(app, XH1)
    app.assignments.ack(case_id, REPORTER)
    [mine] = app.tasks.for_actor(REPORTER)
    assert (mine.kind, mine.assignee) == ("act", REPORTER)
    assert mine.deadline_local == "2026-09-18 12:00"  # the state's own deadline now (2h)
    [leader] = app.tasks.for_actor(VILLAGE_LEADER)
    assert (leader.kind, leader.assignee) == ("act", REPORTER)
    assert leader.acked_at is not None


def test_overdue_first_most_overdue_first_then_the_soonest(app: App, clock: FixedClock) -> None:
    early = open_at(app, XH1)
    clock.advance(timedelta(minutes=10))
    late = open_at(app, XH2)
    clock.advance(timedelta(minutes=15))
    fresh = open_at(app, XH1)
    app.assignments.ack(fresh, VILLAGE_LEADER)  # its deadline: the state's, 2h
    clock.advance(timedelta(minutes=20))  # 10:45: early's ack is 15m late, late's 5m late
    found = app.tasks.for_actor(VILLAGE_LEADER)
    assert [t.case_id for t in found] == [early, late, fresh]
    assert [t.seconds_left for t in found] == [-15 * 60, -5 * 60, 100 * 60]
    overdue = app.tasks.for_actor(VILLAGE_LEADER, overdue_only=True)
    assert [(t.case_id, t.overdue) for t in overdue] == [(early, True), (late, True)]
    assert [t.case_id for t in app.tasks.for_actor(VILLAGE_LEADER, limit=1)] == [early]


def test_closed_cases_are_no_tasks(app: App) -> None:
    case_id = open_at(app, XH1)
    to_reported(app, case_id)
    app.cases.submit_event(
        case_id, "dismiss", TOWN_LEADER, {"verify_note": "合法", "close_reason": "已备案"}
    )
    assert listed(app, TOWN_LEADER) == []


def test_pending_party_transfer_and_open_supervision_are_tasks(app: App, clock: FixedClock) -> None:
    """Other helpers write these rows; the list reads them as they are."""
    case_id = open_at(app, XH1)
    now = clock.now()
    with app.engine.begin() as conn:
        conn.execute(
            sa.insert(case_parties).values(
                case_id=case_id,
                state="discovered",
                entered_seq=1,
                role="district.dept_agri",
                status="pending",
                deadline_at=now + timedelta(days=5),
                created_at=now,
            )
        )
        conn.execute(
            sa.insert(case_transfers).values(
                case_id=case_id,
                state="reported",  # the bundled state that declares a transfer
                from_unit=XH1,
                to_unit="ddk-js",
                reason="属地不符",
                sent_by=VILLAGE_LEADER,
                sent_at=now,
                deadline_at=now + timedelta(days=3),
                status="pending",
            )
        )
        conn.execute(
            sa.insert(supervisions).values(
                case_id=case_id,
                state="discovered",
                unit_code="ddk-bq-xh",
                issued_by="p-ddk-office1",
                issued_at=now + timedelta(seconds=1),
                note="请加快处置",
                deadline_at=now + timedelta(days=1),
                status="open",
            )
        )
    assert listed(app, "p-ddk-agri") == [(case_id, "sign")]
    assert listed(app, "p-js-leader") == [(case_id, "transfer")]
    assert listed(app, "p-js-office") == [(case_id, "transfer")]  # reported: leader, office
    kinds = listed(app, VILLAGE_LEADER)
    assert kinds == [(case_id, "ack"), (case_id, "supervision")]
    # a supervision answered by the case moving on is no task any more
    app.cases.submit_event(case_id, "stop", VILLAGE_LEADER, {"stop_note": "已制止"})
    assert (case_id, "supervision") not in listed(app, VILLAGE_LEADER)


# -- a small grid and workflow of our own -------------------------------------------------

SMALL_GRID = """
units:
  - code: d
    name: 区
    level: district
    children:
      - code: t
        name: 镇
        level: town
        children:
          - {code: v1, name: 一村, level: village}
          - {code: v2, name: 二村, level: village}
people:
  - {id: a1, name: 甲, roles: [{unit: v1, role: member}]}
  - {id: a2, name: 乙, roles: [{unit: v2, role: member}]}
  - {id: boss, name: 镇长, roles: [{unit: t, role: leader}]}
"""

SMALL_WORKFLOW = """
workflow: small
initial: open
roles: [village.member, town.leader]
fields:
  note: {type: string}
states:
  open:
    deadline: {within: 4h}
    ack: {within: 1h, escalate: [{after: 0m, notify: [town.leader]}]}
  checking:
    deadline: {within: 1d}
  done: {final: true}
transitions:
  - {trigger: submit, from: open, to: checking, roles: [village.member], requires: [note]}
  - {trigger: close, from: checking, to: done, roles: [town.leader]}
"""


def test_tasks_on_a_small_grid_of_our_own(
    database: Database, clock: FixedClock, tmp_path: Path
) -> None:
    app = farmland_app(database.url, clock, grid=SMALL_GRID)
    try:
        app.catalog.register_text(SMALL_WORKFLOW, "small.yaml")
        one = app.cases.create_case("small", "v1", "a1", {}).id
        clock.advance(timedelta(minutes=30))
        two = app.cases.create_case("small", "v2", "a2", {}).id
        app.cases.submit_event(two, "submit", "a2", {"note": "好了"})
        assert listed(app, "a1") == [(one, "ack")]
        assert listed(app, "a2") == []  # its case is checking: the town's
        assert listed(app, "boss") == [(two, "act")]
        [task] = app.tasks.for_actor("a1")
        assert task.actions[1]["payload"] == [
            {"name": "note", "type": "string", "title": "note", "required": True}
        ]
        clock.advance(timedelta(hours=1))  # one's ack is 30m late
        assert [t.seconds_left for t in app.tasks.for_actor("a1", overdue_only=True)] == [-1800]
        assert listed(app, "boss", overdue_only=True) == []
    finally:
        app.close()


def test_gengbao_tasks_on_the_command_line(database: Database, tmp_path: Path) -> None:
    env = {**os.environ, "GENGBAO_DATABASE_URL": database.url}
    config = tmp_path / "gengbao.yaml"
    folder = write_ack_workflow(tmp_path / "workflows")
    config.write_text(f"workflows_dir: {folder}\n", encoding="utf-8")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [GENGBAO, "--config", str(config), "--now", "2026-09-18T10:00:00+08:00", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            check=False,
        )

    from tests.support.farmland import GRID_FILE

    assert run("grid", "load", str(GRID_FILE)).returncode == 0
    made = run(
        "case", "create", WORKFLOW, "--unit", XH1, "--actor", REPORTER,
        "--data", json.dumps(CASE_DATA), "--json",
    )  # fmt: skip
    case_id = json.loads(made.stdout)["id"]
    shown = run("tasks", "--actor", REPORTER, "--json")
    assert shown.returncode == 0, shown.stderr
    [task] = json.loads(shown.stdout)
    assert (task["case"], task["kind"], task["deadline_local"]) == (
        case_id,
        "ack",
        "2026-09-18 10:30",
    )
    human = run("tasks", "--actor", REPORTER)
    assert (
        case_id in human.stdout and "ack" in human.stdout and "due 2026-09-18 10:30" in human.stdout
    )
    acked = run("case", "ack", case_id, "--actor", REPORTER)
    assert acked.returncode == 0, acked.stderr
    assert f"assignee: {REPORTER}" in acked.stdout
    show = run("case", "show", case_id)
    assert f"assignee: {REPORTER} (acknowledged 2026-09-18 10:00)" in show.stdout
    late = subprocess.run(
        [
            GENGBAO,
            "--config",
            str(config),
            "--now",
            "2026-09-18T13:00:00+08:00",
            "tasks",
            "--actor",
            REPORTER,
            "--overdue",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert "OVERDUE 1h 0m" in late.stdout, late.stdout + late.stderr
    refused = run("case", "assign", case_id, "--to", "p-bq-leader", "--actor", VILLAGE_LEADER)
    assert refused.returncode == 1 and "to:" in refused.stderr
