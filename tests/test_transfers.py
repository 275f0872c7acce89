"""Transfers (移送/转办): a case sent to another unit, accepted or returned, on time or late.

The bundled workflow lets the town send a case in ``reported`` to another town
(or up to the district), and a case in ``town_handling`` to a district
department; the receiver has 3 working days to accept or return it.
"""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from engine.app import App
from engine.clock import FixedClock
from engine.definitions import validate_text
from engine.errors import (
    InvalidData,
    NotPermitted,
    TransferNotAllowed,
    TransferNotPending,
    TransferPending,
    UnknownCase,
)
from engine.grid.registry import load_grid
from engine.store.tables import case_transfers, cases, history, notifications, overdue_facts, timers
from tests.support.databases import Database
from tests.support.farmland import (
    CASE_DATA,
    GRID_FILE,
    LIFECYCLE,
    REPORTER,
    ROOT,
    UNIT,
    WORKFLOW_FILE,
    case_service,
    open_case,
    step,
)
from tests.support.processes import GENGBAO, gengbao_env

TOWN_LEADER = "p-bq-leader"  # 八桥镇镇长: sends from the case's own town
RECEIVER = "p-js-office"  # 建胜镇专班办公室: holds office on ddk-js only
OUTSIDER = "p-td-office"  # 跳磴镇专班办公室
REASON = "违法地块位于建胜镇辖区，不属本镇管辖"


def reported(app: App) -> str:
    """A case on UNIT walked to ``reported`` (the town verifies it)."""
    case_id = open_case(app)
    step(app, case_id, 0)
    step(app, case_id, 1)
    assert app.cases.get_case(case_id).state == "reported"
    return case_id


def town_handling(app: App) -> str:
    case_id = reported(app)
    payload = {**LIFECYCLE[2][2], "area_m2": 100, "land_type": "一般耕地", "complex": False}
    assert app.cases.submit_event(case_id, "confirm", TOWN_LEADER, payload).state == (
        "town_handling"
    )
    return case_id


def rows(app: App, table: Any, case_id: str) -> list[Any]:
    with app.engine.connect() as conn:
        return list(
            conn.execute(sa.select(table).where(table.c.case_id == case_id).order_by(table.c.id))
        )


def entries(app: App, case_id: str) -> list[Any]:
    with app.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(history).where(history.c.case_id == case_id).order_by(history.c.seq)
            )
        )


def test_a_transfer_waits_then_accept_moves_the_case_and_history_has_each_hop(
    app: App, clock: FixedClock
) -> None:
    case_id = reported(app)
    sent = app.transfers.transfer(case_id, "ddk-js", TOWN_LEADER, REASON)
    assert (sent.unit, sent.state) == (UNIT, "reported")
    (row,) = rows(app, case_transfers, case_id)
    assert (row.from_unit, row.to_unit, row.to_role, row.status, row.sent_by) == (
        UNIT,
        "ddk-js",
        None,
        "pending",
        TOWN_LEADER,
    )
    assert row.deadline_at > clock.now()
    waiting = {t.kind for t in rows(app, timers, case_id) if t.subject_id == row.id}
    assert waiting == {"transfer.deadline", "transfer.reminder", "transfer.escalation"}
    received = [n for n in rows(app, notifications, case_id) if n.template == "transfer_received"]
    assert [(n.unit_code, n.roles) for n in received] == [
        ("ddk-js", ["town.leader", "town.office"])
    ]
    # the case shows sender and receiver; the receiver reads it, an outsider does not
    pending = app.transfers.pending(case_id, viewer=RECEIVER)
    assert pending is not None
    assert (pending["from_unit"], pending["to_unit"], pending["sent_by"]) == (
        UNIT,
        "ddk-js",
        TOWN_LEADER,
    )
    assert app.cases.get_case(case_id, viewer=RECEIVER).id == case_id
    assert app.timers.describe(case_id, viewer=RECEIVER)["timers"]
    with pytest.raises(UnknownCase):
        app.cases.get_case(case_id, viewer=OUTSIDER)
    with pytest.raises(UnknownCase):
        app.transfers.accept(case_id, OUTSIDER, viewer=OUTSIDER)
    clock.advance(timedelta(hours=1))
    accepted = app.transfers.accept(case_id, RECEIVER, "本镇受理", viewer=RECEIVER)
    assert accepted.unit == "ddk-js"
    (row,) = rows(app, case_transfers, case_id)
    assert (row.status, row.answered_by, row.answer_note) == ("accepted", RECEIVER, "本镇受理")
    left = {t.status for t in rows(app, timers, case_id) if t.subject_id == row.id}
    assert left == {"cancelled"}
    hops = [(e.trigger, e.actor, e.payload.get("to_unit")) for e in entries(app, case_id)[-2:]]
    assert hops == [("transfer", TOWN_LEADER, "ddk-js"), ("transfer_accept", RECEIVER, "ddk-js")]
    assert entries(app, case_id)[-1].payload["from_unit"] == UNIT
    told = [n for n in rows(app, notifications, case_id) if n.template == "transfer_accepted"]
    assert [(n.unit_code, n.roles[0]) for n in told] == [(UNIT, f"person:{TOWN_LEADER}")]
    # the old village's people no longer see it; the new town's do, and act on it
    with pytest.raises(UnknownCase):
        app.cases.get_case(case_id, viewer=REPORTER)
    with pytest.raises(UnknownCase):
        app.cases.get_case(case_id, viewer="p-bq-office")
    assert app.cases.get_case(case_id, viewer=RECEIVER).unit == "ddk-js"
    view = app.cases.submit_event(
        case_id, "dismiss", RECEIVER, {"verify_note": "已核实", "close_reason": "已办理手续"}
    )
    assert view.state == "dismissed"
    (hop,) = app.transfers.transfers(case_id)
    assert (hop["status"], hop["late"], hop["answered_by"]) == ("accepted", False, RECEIVER)
    assert hop["sent_at"].endswith("+08:00")


def test_a_pending_transfer_blocks_every_event_and_a_second_transfer(app: App) -> None:
    case_id = reported(app)
    app.transfers.transfer(case_id, "ddk-js", TOWN_LEADER, REASON)
    before = entries(app, case_id)
    with pytest.raises(TransferPending) as refused:
        app.cases.submit_event(
            case_id, "dismiss", TOWN_LEADER, {"verify_note": "x", "close_reason": "y"}
        )
    assert "ddk-js" in str(refused.value) and refused.value.code == "transfer_pending"
    with pytest.raises(TransferPending):
        app.transfers.transfer(case_id, "ddk-td", TOWN_LEADER, REASON)
    # the engine's own triggers are held as well
    with app.engine.begin() as conn, pytest.raises(TransferPending):
        app.cases.fire_as_system(conn, case_id, "dismiss")
    assert len(entries(app, case_id)) == len(before)
    assert len(rows(app, case_transfers, case_id)) == 1


@pytest.mark.parametrize(
    ("to", "field_text"),
    [
        ("ddk-bq-sl", "is a village"),  # a level the state does not declare
        ("district.dept_agri", "not a department"),  # a department it does not declare
        ("ddk-nowhere", "unknown unit"),
        (UNIT, "is a group"),
    ],
)
def test_a_transfer_to_an_undeclared_place_is_refused_naming_to(
    app: App, to: str, field_text: str
) -> None:
    case_id = reported(app)
    before = len(entries(app, case_id))
    with pytest.raises(InvalidData) as refused:
        app.transfers.transfer(case_id, to, TOWN_LEADER, REASON)
    assert set(refused.value.problems) == {"to"}
    assert field_text in refused.value.problems["to"]
    assert rows(app, case_transfers, case_id) == []
    assert len(entries(app, case_id)) == before


def test_refusals_write_nothing(app: App) -> None:
    case_id = reported(app)
    with pytest.raises(NotPermitted):  # a village member holds no sending role
        app.transfers.transfer(case_id, "ddk-js", REPORTER, REASON)
    with pytest.raises(InvalidData) as blank:
        app.transfers.transfer(case_id, "ddk-js", TOWN_LEADER, "  ")
    assert set(blank.value.problems) == {"reason"}
    with pytest.raises(TransferNotPending):
        app.transfers.accept(case_id, RECEIVER)
    fresh = open_case(app)
    with pytest.raises(TransferNotAllowed):  # discovered declares no transfer
        app.transfers.transfer(fresh, "ddk-js", TOWN_LEADER, REASON)
    assert rows(app, case_transfers, case_id) == rows(app, case_transfers, fresh) == []
    assert [e.trigger for e in entries(app, case_id)] == ["create", "stop_fail", "report"]


def test_only_the_receivers_accept_roles_answer(app: App) -> None:
    case_id = reported(app)
    app.transfers.transfer(case_id, "ddk-js", TOWN_LEADER, REASON)
    for actor in ("p-js-duty", TOWN_LEADER, "p-js-bh-leader"):  # not leader/office of ddk-js
        with pytest.raises(NotPermitted):
            app.transfers.accept(case_id, actor)
    assert rows(app, case_transfers, case_id)[0].status == "pending"


def test_return_needs_a_reason_and_leaves_the_unit(app: App) -> None:
    case_id = reported(app)
    app.transfers.transfer(case_id, "ddk-js", TOWN_LEADER, REASON)
    with pytest.raises(InvalidData) as blank:
        app.transfers.return_(case_id, RECEIVER, "")
    assert set(blank.value.problems) == {"reason"}
    view = app.transfers.return_(case_id, RECEIVER, "地块在八桥镇境内", viewer=RECEIVER)
    assert view.unit == UNIT
    (row,) = rows(app, case_transfers, case_id)
    assert (row.status, row.answer_note) == ("returned", "地块在八桥镇境内")
    last = entries(app, case_id)[-1]
    assert (last.trigger, last.payload["reason"], last.payload["transfer"]) == (
        "transfer_return",
        "地块在八桥镇境内",
        row.id,
    )
    told = [n for n in rows(app, notifications, case_id) if n.template == "transfer_returned"]
    assert told and told[0].roles == [f"person:{TOWN_LEADER}", "town.leader", "town.office"]
    with pytest.raises(UnknownCase):  # it waits for ddk-js no more
        app.cases.get_case(case_id, viewer=RECEIVER)
    with pytest.raises(TransferNotPending) as again:
        app.transfers.accept(case_id, RECEIVER, transfer_id=row.id)
    assert "returned" in str(again.value)
    # the case moves on again
    assert app.transfers.transfer(case_id, "ddk", TOWN_LEADER, "报区处理").unit == UNIT
    assert app.transfers.accept(case_id, "p-ddk-office1").unit == "ddk"


def test_a_department_transfer_is_answered_by_that_role(app: App) -> None:
    case_id = town_handling(app)
    with pytest.raises(InvalidData):
        app.transfers.transfer(case_id, "ddk-js", TOWN_LEADER, REASON)
    app.transfers.transfer(case_id, "district.dept_agri", TOWN_LEADER, "涉及设施农业用地")
    (row,) = rows(app, case_transfers, case_id)
    assert (row.to_unit, row.to_role) == ("ddk", "district.dept_agri")
    with pytest.raises(NotPermitted):
        app.transfers.accept(case_id, "p-ddk-planning")
    assert app.transfers.accept(case_id, "p-ddk-agri").unit == "ddk"


def test_an_unanswered_transfer_is_reminded_goes_overdue_and_escalates(
    app: App, clock: FixedClock
) -> None:
    case_id = reported(app)
    app.transfers.transfer(case_id, "ddk-js", TOWN_LEADER, REASON)
    (row,) = rows(app, case_transfers, case_id)
    clock.advance(row.deadline_at - clock.now() - timedelta(hours=12))
    app.timers.run_due()
    reminders = [n for n in rows(app, notifications, case_id) if n.template == "transfer_reminder"]
    assert [(n.kind, n.unit_code, n.roles) for n in reminders] == [
        ("reminder", "ddk-js", ["town.leader", "town.office"])
    ]
    assert not [f for f in rows(app, overdue_facts, case_id) if f.duty == "transfer"]
    clock.advance(timedelta(hours=12, minutes=1))
    app.timers.run_due()
    facts = [f for f in rows(app, overdue_facts, case_id) if f.duty == "transfer"]
    assert sorted((f.level, f.deadline_at) for f in facts) == [
        (0, row.deadline_at),
        (1, row.deadline_at),
    ]
    rung = [n for n in rows(app, notifications, case_id) if n.template == "transfer_overdue"]
    assert [(n.kind, n.roles) for n in rung] == [("escalation", ["district.office"])]
    (hop,) = app.transfers.transfers(case_id)
    assert hop["late"] is True
    app.transfers.accept(case_id, RECEIVER)
    assert app.transfers.transfers(case_id)[0]["late"] is True


def test_retries_with_a_key_replay_the_first_answer(app: App) -> None:
    case_id = reported(app)
    first = app.transfers.transfer(case_id, "ddk-js", TOWN_LEADER, REASON, key="t-1")
    again = app.transfers.transfer(case_id, "ddk-js", TOWN_LEADER, REASON, key="t-1")
    assert first.as_dict() == again.as_dict()
    assert len(rows(app, case_transfers, case_id)) == 1
    one = app.transfers.accept(case_id, RECEIVER, key="a-1")
    two = app.transfers.accept(case_id, RECEIVER, key="a-1")
    assert one.as_dict() == two.as_dict() and one.unit == "ddk-js"
    assert [e.trigger for e in entries(app, case_id)].count("transfer_accept") == 1


# -- the definition ---------------------------------------------------------------

BASE = """\
workflow: t
initial: open
states:
  open:
{state}
  done: {{final: true}}
transitions:
  - {{trigger: finish, from: open, to: done, roles: [town.leader]}}
"""


def problems(state: str) -> list[str]:
    text = BASE.format(state=state)
    return [
        f"{d.path}: {d.message}" for d in validate_text(text, "t.yaml").diagnostics if d.is_error
    ]


def test_the_loader_reads_a_transfer_and_points_at_its_mistakes() -> None:
    good = "    transfer: {to: [town, district.dept_agri], deadline: {within: 3d, remind: [1d]}}"
    assert problems(good) == []
    cases_ = {
        "    transfer: {to: [towns]}": "states.open.transfer.to[0]: unknown level 'towns'",
        "    transfer: {to: [town.Leader]}": "states.open.transfer.to[0]: bad role name",
        "    transfer: {to: [town], accept_roles: [Boss]}": "accept_roles[0]: bad role name",
        "    transfer: {to: [town], whom: x}": "states.open.transfer",
        "    transfer: {roles: [town.leader]}": "missing required key 'to'",
        "    transfer: {to: [town], deadline: {until: rectify_by}}": "not 'until'",
        "    transfer:\n      to: [town]\n      deadline:\n        within: 1d\n"
        "        escalate: [{after: 0m, notify: [district.office], trigger: finish}]": (
            "deadline.escalate[0].trigger: a transfer's rung only notifies"
        ),
    }
    for state, expected in cases_.items():
        found = problems(state)
        assert any(expected in p for p in found), (state, found)


def test_a_final_state_cannot_declare_a_transfer() -> None:
    text = BASE.format(state="    title: open").replace(
        "done: {final: true}", "done: {final: true, transfer: {to: [town]}}"
    )
    found = [d for d in validate_text(text, "t.yaml").diagnostics if d.is_error]
    assert [d.path for d in found] == ["states.done.transfer"]
    assert "final" in found[0].message and found[0].line == 6


# -- two processes answer the same transfer at once (PostgreSQL) -------------------


def test_an_accept_and_a_return_at_the_same_instant_one_wins(
    database: Database, clock: FixedClock, tmp_path: Path
) -> None:
    if database.backend != "postgres":
        pytest.skip("two processes blocked on one row lock: PostgreSQL")
    from tests.test_idempotency_races import case_held, tagged, wait_blocked

    engine = database.new_engine()
    load_grid(engine, GRID_FILE)
    service = case_service(engine, clock)
    service.catalog.sync_folder(WORKFLOW_FILE.parent)
    case_id = service.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA).id
    for trigger, actor, payload, _ in LIFECYCLE[:2]:
        service.submit_event(case_id, trigger, actor, payload)
    settings = tmp_path / "gengbao.yaml"
    settings.write_text(yaml.safe_dump({"workflows_dir": str(ROOT / "workflows")}), "utf-8")
    base = [GENGBAO, "--config", str(settings), "--now", "2026-09-18T11:00:00+08:00", "case"]
    sent = subprocess.run(
        [*base, "transfer", case_id, "--to", "ddk-js", "--actor", TOWN_LEADER, "--reason", REASON],
        env=gengbao_env(database.url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stderr
    tag = "gb-transfer-race"
    env = gengbao_env(tagged(database.url, tag))
    commands = [
        [*base, "accept", case_id, "--actor", RECEIVER, "--json"],
        [*base, "return", case_id, "--actor", "p-js-leader", "--reason", "不属本镇", "--json"],
    ]
    outs = [tmp_path / f"out{i}" for i in range(2)]
    errs = [tmp_path / f"err{i}" for i in range(2)]
    with case_held(database, case_id):
        processes = []
        for command, out, err in zip(commands, outs, errs, strict=True):
            with out.open("wb") as o, err.open("wb") as e:
                processes.append(subprocess.Popen(command, stdout=o, stderr=e, env=env, cwd=ROOT))
        try:
            wait_blocked(database, tag, 2, timeout=60)
        except AssertionError:
            for p in processes:
                p.kill()
            raise
    codes = [p.wait(60) for p in processes]
    assert sorted(codes) == [0, 1], [e.read_text("utf-8") for e in errs]
    winner = codes.index(0)
    loser_says = errs[1 - winner].read_text("utf-8")
    status = "accepted" if winner == 0 else "returned"
    assert f"already {status}" in loser_says and "Traceback" not in loser_says
    answer = json.loads(outs[winner].read_text("utf-8"))
    assert answer["unit"] == ("ddk-js" if winner == 0 else UNIT)
    with engine.connect() as conn:
        (row,) = conn.execute(sa.select(case_transfers)).all()
        unit = conn.execute(sa.select(cases.c.unit_code)).scalar_one()
        answered = conn.execute(
            sa.select(sa.func.count())
            .select_from(history)
            .where(history.c.trigger.in_(["transfer_accept", "transfer_return"]))
        ).scalar_one()
    assert row.status == status and answered == 1
    assert unit == ("ddk-js" if winner == 0 else UNIT)
    engine.dispose()
