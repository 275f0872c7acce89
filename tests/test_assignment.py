"""签收 and 指派: acknowledging a case in a state that asks for it, assigning it, the
acknowledgement deadline's overdue fact and rung; a race of two acks across processes."""

from __future__ import annotations

import json
import secrets
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.app import App
from engine.clock import FixedClock
from engine.errors import AlreadyAssigned, InvalidData, NotPermitted
from engine.store.tables import case_assignments, history, notifications, overdue_facts, timers
from tests.support.acks import ACK_WORKFLOW
from tests.support.databases import Database
from tests.support.farmland import (
    CASE_DATA,
    GRID_FILE,
    REPORTER,
    ROOT,
    UNIT,
    WORKFLOW_FILE,
    case_service,
    open_case,
)
from tests.support.processes import GENGBAO, gengbao_env

WORKFLOW = "farmland_violation"
MEMBER1 = "p-bq-xh-member1"  # 新华村 village.member
LEADER = "p-bq-xh-leader"  # 新华村 village.leader: an assigner
TOWN_LEADER = "p-bq-leader"  # town.leader: cannot act in discovered


@pytest.fixture
def app(app: App) -> App:
    """The farmland App whose current workflow asks discovered and reported for 签收."""
    app.catalog.register_text(ACK_WORKFLOW, "farmland_violation.yaml")
    return app


def rows(app: App, table: sa.Table, case_id: str) -> list[Any]:
    with app.engine.connect() as conn:
        return list(conn.execute(sa.select(table).where(table.c.case_id == case_id)))


def history_triggers(app: App, case_id: str) -> list[str]:
    return [e.trigger for e in app.cases.history(case_id)]


def ack_timers(app: App, case_id: str) -> dict[str, str]:
    return {t.kind: t.status for t in rows(app, timers, case_id) if t.kind.startswith("ack.")}


def test_entering_a_state_with_ack_writes_its_timers_and_offers_the_case(app: App) -> None:
    case_id = open_case(app)
    assert ack_timers(app, case_id) == {
        "ack.deadline": "pending",
        "ack.reminder": "pending",
        "ack.escalation": "pending",
    }
    offered = app.assignments.describe(case_id)["assignment"]
    assert offered["status"] == "offered" and offered["assignee"] is None
    assert offered["deadline_at"] == "2026-09-18T02:30:00+00:00"  # 10:00 + 30m, in UTC
    assert rows(app, case_assignments, case_id) == []  # the row waits for its first need


def test_an_ack_by_someone_who_cannot_act_is_refused_and_writes_nothing(app: App) -> None:
    case_id = open_case(app)
    before = history_triggers(app, case_id)
    with pytest.raises(NotPermitted) as refused:
        app.assignments.ack(case_id, TOWN_LEADER)
    assert "village.member" in refused.value.details["roles"]
    assert rows(app, case_assignments, case_id) == []
    assert history_triggers(app, case_id) == before
    assert set(ack_timers(app, case_id).values()) == {"pending"}


def test_the_first_ack_wins_and_a_second_by_another_names_the_assignee(app: App) -> None:
    case_id = open_case(app)
    view = app.assignments.ack(case_id, REPORTER)
    assert view.extra["assignment"]["assignee"] == REPORTER
    assert view.extra["assignment"]["status"] == "acked"
    with pytest.raises(AlreadyAssigned) as second:
        app.assignments.ack(case_id, MEMBER1)
    assert second.value.details["assignee"] == REPORTER
    again = app.assignments.ack(case_id, REPORTER)  # the assignee again: a no-op answer
    assert again.extra["assignment"]["acked_at"] == view.extra["assignment"]["acked_at"]
    assert history_triggers(app, case_id) == ["create", "ack"]
    [entry] = [e for e in app.cases.history(case_id) if e.trigger == "ack"]
    assert entry.actor == REPORTER and entry.payload["assignee"] == REPORTER
    assert entry.from_state == entry.to_state == "discovered"
    [row] = rows(app, case_assignments, case_id)
    assert (row.status, row.assignee, row.entered_seq) == ("acked", REPORTER, 1)
    assert set(ack_timers(app, case_id).values()) == {"cancelled"}


def test_an_ack_with_a_key_replays_its_first_answer(app: App) -> None:
    case_id = open_case(app)
    first = app.assignments.ack(case_id, REPORTER, key="ack-1")
    second = app.assignments.ack(case_id, REPORTER, key="ack-1")
    assert first.revision == second.revision == 2
    assert history_triggers(app, case_id) == ["create", "ack"]


def test_assign_by_someone_who_is_no_assigner_is_refused(app: App) -> None:
    case_id = open_case(app)
    with pytest.raises(NotPermitted) as refused:
        app.assignments.assign(case_id, REPORTER, MEMBER1)
    assert refused.value.details["roles"] == ["village.leader", "town.leader", "district.leader"]
    assert rows(app, case_assignments, case_id) == []
    assert history_triggers(app, case_id) == ["create"]


@pytest.mark.parametrize("to", [TOWN_LEADER, "nobody-at-all"])
def test_assign_to_a_person_who_cannot_act_is_refused_naming_to(app: App, to: str) -> None:
    case_id = open_case(app)
    with pytest.raises(InvalidData) as refused:
        app.assignments.assign(case_id, to, LEADER)
    assert set(refused.value.problems) == {"to"} and to in refused.value.problems["to"]
    assert rows(app, case_assignments, case_id) == []
    assert rows(app, notifications, case_id) == []
    assert history_triggers(app, case_id) == ["create"]


def test_a_leader_assigns_then_reassigns_and_each_assignee_is_told(app: App) -> None:
    case_id = open_case(app)
    app.assignments.ack(case_id, REPORTER)
    view = app.assignments.assign(case_id, MEMBER1, LEADER)
    assert view.extra["assignment"]["assignee"] == MEMBER1
    assert view.extra["assignment"]["status"] == "assigned"
    assert view.extra["assignment"]["assigned_by"] == LEADER
    view = app.assignments.assign(case_id, "p-bq-xh-member2", LEADER)
    [row] = rows(app, case_assignments, case_id)
    assert (row.assignee, row.status, row.acked_at) == ("p-bq-xh-member2", "assigned", None)
    told = [(n.template, n.roles) for n in rows(app, notifications, case_id)]
    assert told == [
        ("case_assigned", [f"person:{MEMBER1}"]),
        ("case_assigned", ["person:p-bq-xh-member2"]),
    ]
    entries = [e for e in app.cases.history(case_id) if e.trigger == "assign"]
    assert [(e.actor, e.payload["assignee"], e.payload["previous"]) for e in entries] == [
        (LEADER, MEMBER1, REPORTER),
        (LEADER, "p-bq-xh-member2", MEMBER1),
    ]
    # the assignee acknowledges what it was given; another one cannot take it
    with pytest.raises(AlreadyAssigned):
        app.assignments.ack(case_id, MEMBER1)
    acked = app.assignments.ack(case_id, "p-bq-xh-member2")
    assert acked.extra["assignment"]["status"] == "acked"


def test_nobody_acknowledges_in_time_an_ack_fact_and_the_rung_notice(
    app: App, clock: FixedClock
) -> None:
    case_id = open_case(app)
    clock.advance(timedelta(minutes=31))
    app.timers.run_due()
    facts = rows(app, overdue_facts, case_id)
    assert sorted((f.duty, f.level, f.person_id) for f in facts) == [
        ("ack", 0, None),
        ("ack", 1, None),
    ]
    rung = [n for n in rows(app, notifications, case_id) if n.kind == "escalation"]
    assert [(n.template, n.roles) for n in rung] == [("ack_overdue", ["village.leader"])]
    [row] = rows(app, case_assignments, case_id)
    assert (row.status, row.assignee) == ("offered", None)
    # the leader then assigns it; the overdue record stays
    app.assignments.assign(case_id, MEMBER1, LEADER)
    [row] = rows(app, case_assignments, case_id)
    assert (row.status, row.assignee) == ("assigned", MEMBER1)


def test_the_reminder_goes_to_those_who_can_act(app: App, clock: FixedClock) -> None:
    case_id = open_case(app)
    clock.advance(timedelta(minutes=16))
    app.timers.run_due()
    reminders = [n for n in rows(app, notifications, case_id) if n.template == "ack_reminder"]
    assert [sorted(n.roles) for n in reminders] == [
        ["group.member", "town.duty", "town.office", "village.leader", "village.member"]
    ]


def test_acknowledged_in_time_no_ack_fact(app: App, clock: FixedClock) -> None:
    case_id = open_case(app)
    clock.advance(timedelta(minutes=10))
    app.assignments.ack(case_id, REPORTER)
    clock.advance(timedelta(minutes=25))  # past the ack deadline, before the state's reminder
    assert app.timers.run_due() == []  # its timers were cancelled with the ack
    assert [f for f in rows(app, overdue_facts, case_id) if f.duty == "ack"] == []
    assert [n.template for n in rows(app, notifications, case_id)] == []


def test_leaving_the_state_ends_its_acknowledgement_and_the_next_one_starts(
    app: App, clock: FixedClock
) -> None:
    case_id = open_case(app)
    app.assignments.ack(case_id, REPORTER)
    app.cases.submit_event(case_id, "stop_fail", REPORTER, {"stop_note": "拒不停工"})
    assert app.assignments.describe(case_id)["assignment"] is None  # stop_failed asks none
    clock.advance(timedelta(minutes=5))
    app.cases.submit_event(case_id, "report", LEADER, {"report_note": "报镇街"})
    offered = app.assignments.describe(case_id)["assignment"]
    assert (offered["state"], offered["status"], offered["assignee"]) == (
        "reported",
        "offered",
        None,
    )
    view = app.assignments.ack(case_id, TOWN_LEADER)
    assert view.extra["assignment"]["state"] == "reported"
    by_state = {r.state: (r.status, r.assignee) for r in rows(app, case_assignments, case_id)}
    assert by_state == {"discovered": ("acked", REPORTER), "reported": ("acked", TOWN_LEADER)}
    with app.engine.connect() as conn:
        seq = conn.execute(
            sa.select(history.c.seq).where(
                history.c.case_id == case_id, history.c.trigger == "report"
            )
        ).scalar_one()
    assert [
        r.entered_seq for r in rows(app, case_assignments, case_id) if r.state == "reported"
    ] == [seq]


def test_an_ack_on_a_closed_case_is_refused(app: App) -> None:
    case_id = open_case(app)
    app.cases.submit_event(case_id, "stop_fail", REPORTER, {"stop_note": "拒不停工"})
    app.cases.submit_event(case_id, "report", LEADER, {"report_note": "报镇街"})
    app.cases.submit_event(
        case_id, "dismiss", TOWN_LEADER, {"verify_note": "合法", "close_reason": "已备案"}
    )
    with pytest.raises(Exception) as refused:
        app.assignments.ack(case_id, TOWN_LEADER)
    assert getattr(refused.value, "code", "") == "trigger_not_allowed"


def test_entering_states_with_ack_adds_no_statement_to_an_event(
    app: App, clock: FixedClock
) -> None:
    """The lifecycle with 签收 in discovered and reported: the ack timers go in the
    statement that writes the state's own, so every event stays within the bound."""
    from tests.test_event_statements import MAX_STATEMENTS_PER_EVENT, walk

    walk(app, clock)  # fills the roles cache
    counts = [len(statements) for statements in walk(app, clock)]
    print("statements per event, with ack:", counts)
    assert max(counts) <= MAX_STATEMENTS_PER_EVENT
    assert counts == [7, 7, 7, 7, 7, 7, 6]


# -- two processes race to acknowledge (PostgreSQL: both wait on the case row) ------------


def test_two_processes_ack_at_once_exactly_one_wins(
    database: Database, clock: FixedClock, tmp_path: Path
) -> None:
    if database.backend != "postgres":
        pytest.skip("a lock race needs PostgreSQL's row locks")
    from tests.test_idempotency_races import case_held, tagged, wait_blocked, write_settings

    engine = database.new_engine()
    from engine.grid.registry import load_grid

    load_grid(engine, GRID_FILE)
    service = case_service(engine, clock)
    service.catalog.sync_folder(WORKFLOW_FILE.parent)
    case_id = service.create_case(WORKFLOW, UNIT, REPORTER, CASE_DATA).id
    tag = f"gb-ack-{secrets.token_hex(4)}"
    env = gengbao_env(tagged(database.url, tag))
    settings = write_settings(tmp_path)
    processes = []
    outputs = [tmp_path / f"out{i}" for i in range(2)]
    errors = [tmp_path / f"err{i}" for i in range(2)]
    with case_held(database, case_id):
        for actor, out, err in zip((REPORTER, MEMBER1), outputs, errors, strict=True):
            command = [
                GENGBAO, "--config", str(settings), "--now", "2026-09-18T10:05:00+08:00",
                "case", "ack", case_id, "--actor", actor, "--json",
            ]  # fmt: skip
            with out.open("wb") as o, err.open("wb") as e:
                processes.append(
                    subprocess.Popen(
                        command, stdout=o, stderr=e, stdin=subprocess.DEVNULL, env=env, cwd=ROOT
                    )
                )
        try:
            wait_blocked(database, tag, 2, timeout=60)
        except AssertionError:
            for p in processes:
                p.kill()
            raise
    codes = [p.wait(60) for p in processes]
    texts = [e.read_text("utf-8") for e in errors]
    assert sorted(codes) == [0, 1], texts
    winner = codes.index(0)
    answer = json.loads(outputs[winner].read_text("utf-8"))
    assignee = (REPORTER, MEMBER1)[winner]
    assert answer["assignment"]["assignee"] == assignee
    assert "already acknowledged by" in texts[1 - winner] and assignee in texts[1 - winner]
    with engine.connect() as conn:
        written = conn.execute(
            sa.select(case_assignments).where(case_assignments.c.case_id == case_id)
        ).all()
        acks = conn.execute(
            sa.select(sa.func.count())
            .select_from(history)
            .where(history.c.case_id == case_id, history.c.trigger == "ack")
        ).scalar_one()
    assert [(r.status, r.assignee) for r in written] == [("acked", assignee)]
    assert acks == 1
    engine.dispose()
