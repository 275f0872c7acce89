"""Moving open cases onto another workflow version (``workflow migrate``), on a workflow
of the test's own: a shortened deadline, a renamed state, a field made required, the
dry run, the replay of closed cases, and a run killed half-way on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from engine.app import App
from engine.clock import FixedClock
from engine.errors import MigrationRefused, UnknownWorkflow
from engine.grid.visibility import Viewer
from engine.store.tables import cases, history, state_entries, timers
from tests.support.databases import Database
from tests.support.farmland import START, farmland_app
from tests.support.paths import GENGBAO, ROOT
from tests.support.processes import gengbao_env
from tests.support.versions import RENAMED, REQUIRED, SHORTER, V1

UNIT = "ddk-bq-xh-1"
MEMBER = "p-bq-xh-1-member"


@pytest.fixture
def app(database: Database, clock: FixedClock) -> Iterator[App]:
    application = farmland_app(database.url, clock)
    application.catalog.register_text(V1, "hedge_check.yaml")
    try:
        yield application
    finally:
        application.close()


def open_case(app: App, **data: str) -> str:
    return app.cases.create_case("hedge_check", UNIT, MEMBER, {"plot": "三组 7 号", **data}).id


def pending(app: App, case_id: str) -> list[tuple[str, str, object]]:
    t = timers.c
    with app.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.kind, t.state, t.due_at, t.rung)
            .where(t.case_id == case_id, t.status == "pending")
            .order_by(t.kind, t.due_at)
        ).all()
    return [(r.kind, r.state, r.due_at) for r in rows]


def snapshot(app: App) -> list[tuple[object, ...]]:
    with app.engine.connect() as conn:
        return [
            *conn.execute(sa.select(cases).order_by(cases.c.id)).all(),
            *conn.execute(sa.select(history).order_by(history.c.case_id, history.c.seq)).all(),
            *conn.execute(sa.select(timers).order_by(timers.c.id)).all(),
        ]


def test_a_shortened_deadline_moves_and_a_case_already_past_it_goes_overdue_once(
    app: App, clock: FixedClock
) -> None:
    early = open_case(app)
    clock.advance(timedelta(hours=20))
    late = open_case(app)
    clock.advance(timedelta(hours=10))  # early: 30 h in the state; late: 10 h
    assert app.catalog.register_text(SHORTER, "hedge_check.yaml").version == 2
    before = snapshot(app)

    plan = app.version_moves.run("hedge_check", 2, dry_run=True)
    assert snapshot(app) == before  # a dry run writes nothing
    by_case = {m.case: m for m in plan.moves}
    assert set(by_case) == {early, late} and plan.ok
    assert by_case[early].new_deadline == START + timedelta(hours=24)  # time spent is kept
    assert by_case[early].overdue_at_once
    assert by_case[late].new_deadline == START + timedelta(hours=44)
    assert not by_case[late].overdue_at_once
    assert [t.kind for t in by_case[early].timers] == ["deadline", "escalation"]  # reminder past

    done = app.version_moves.run("hedge_check", 2)
    assert done.moved == 2
    assert app.cases.get_case(early).version == 2
    assert pending(app, late) == [
        ("deadline", "checking", START + timedelta(hours=44)),
        ("escalation", "checking", START + timedelta(hours=44)),
        ("reminder", "checking", START + timedelta(hours=32)),
    ]
    entry = app.cases.history(early)[-1]
    assert entry.trigger == "migrated" and entry.actor == "system"
    assert entry.payload["from_version"] == 1 and entry.payload["to_version"] == 2
    assert app.cases.verify(early).ok

    fired = [f for f in app.timers.run_due() if f.case == early]
    assert sorted(f.kind for f in fired) == ["deadline", "escalation"]  # overdue, at once
    clock.advance(timedelta(minutes=5))
    assert [f for f in app.timers.run_due() if f.case == early] == []  # and only once
    # a second run finds nothing to move and writes nothing
    again_before = snapshot(app)
    assert app.version_moves.run("hedge_check", 2).moved == 0
    assert snapshot(app) == again_before


def test_a_deadline_that_already_fired_is_not_fired_again(app: App, clock: FixedClock) -> None:
    case_id = open_case(app)
    clock.advance(timedelta(hours=50))
    assert {f.kind for f in app.timers.run_due() if f.case == case_id} >= {"deadline"}
    app.catalog.register_text(SHORTER, "hedge_check.yaml")
    move = app.version_moves.run("hedge_check", 2).moves[0]
    assert move.timers == ()  # its deadline and rung fired on v1: none again
    assert pending(app, case_id) == []


def test_a_renamed_state_needs_a_map_and_the_case_goes_on_in_the_new_one(
    app: App, clock: FixedClock
) -> None:
    case_id = open_case(app)
    clock.advance(timedelta(hours=3))
    app.catalog.register_text(RENAMED, "hedge_check.yaml")
    before = snapshot(app)
    with pytest.raises(MigrationRefused) as refused:
        app.version_moves.run("hedge_check", 2)
    assert refused.value.problems == [
        {
            "case": case_id,
            "state": "checking",
            "reason": "state 'checking' is not in v2; map it with --map checking=STATE",
        }
    ]
    assert snapshot(app) == before

    with pytest.raises(MigrationRefused, match="v2 has no state 'nowhere'"):
        app.version_moves.run("hedge_check", 2, state_map={"checking": "nowhere"})
    assert snapshot(app) == before

    app.version_moves.run("hedge_check", 2, state_map={"checking": "inspecting"})
    view = app.cases.get_case(case_id)
    assert (view.version, view.state) == (2, "inspecting")
    assert view.state_entered_at == START  # the stay goes on: its deadline too
    assert pending(app, case_id)[0] == ("deadline", "inspecting", START + timedelta(hours=48))
    with app.engine.connect() as conn:
        first = conn.execute(
            sa.select(state_entries.c.first_entered_at).where(
                state_entries.c.case_id == case_id, state_entries.c.state == "inspecting"
            )
        ).scalar_one()
    assert first == START
    moved = app.cases.submit_event(case_id, "check", MEMBER, {})
    assert moved.state == "fixing" and pending(app, case_id)[0][1] == "fixing"


def test_a_field_made_required_refuses_the_case_and_moves_no_other(
    app: App, clock: FixedClock
) -> None:
    without = open_case(app)
    with_owner = open_case(app, owner="王某")
    app.catalog.register_text(REQUIRED, "hedge_check.yaml")
    before = snapshot(app)
    plan = app.version_moves.run("hedge_check", 2, dry_run=True)
    assert [(p["case"], p["reason"]) for p in plan.problems] == [
        (without, "field 'owner' is required in v2")
    ]
    with pytest.raises(MigrationRefused):
        app.version_moves.run("hedge_check", 2)
    assert snapshot(app) == before  # all or none: the good case did not move either
    assert app.version_moves.run("hedge_check", 2, case_ids=[with_owner]).moved == 1
    assert app.cases.get_case(without).version == 1


def test_listed_cases_that_cannot_be_moved_say_why(app: App, clock: FixedClock) -> None:
    case_id = open_case(app)
    closed = open_case(app)
    app.cases.submit_event(closed, "check", MEMBER, {})
    app.cases.submit_event(closed, "finish", MEMBER, {})
    app.catalog.register_text(SHORTER, "hedge_check.yaml")
    with pytest.raises(MigrationRefused) as refused:
        app.version_moves.run("hedge_check", 2, case_ids=[case_id, closed, "NOPE"])
    assert {p["case"]: p["reason"] for p in refused.value.problems} == {
        closed: "the case is closed; only open cases move",
        "NOPE": "no such case",
    }
    with pytest.raises(UnknownWorkflow):
        app.version_moves.run("hedge_check", 7)


def test_the_replay_counts_closed_cases_that_would_have_gone_overdue(
    app: App, clock: FixedClock
) -> None:
    for hours in (10, 30, 60):  # in checking for 10, 30 and 60 hours, then closed
        case_id = open_case(app)
        clock.advance(timedelta(hours=hours))
        app.cases.submit_event(case_id, "check", MEMBER, {})
        app.cases.submit_event(case_id, "finish", MEMBER, {})
    app.catalog.register_text(SHORTER, "hedge_check.yaml")
    plan = app.version_moves.run("hedge_check", 2, dry_run=True, replay_days=30)
    replay = plan.replay
    assert replay is not None
    assert (replay.cases, replay.overdue_cases_was, replay.overdue_cases_would_be) == (3, 1, 2)
    checking = next(line for line in replay.lines if line.state == "checking")
    assert (checking.stays, checking.overdue_was, checking.overdue_would_be) == (3, 1, 2)
    clock.advance(timedelta(days=2))  # the last case closed two days ago
    recent = app.version_moves.run("hedge_check", 2, dry_run=True, replay_days=1).replay
    assert recent is not None and recent.cases == 0


def _cli(database: Database, clock: FixedClock, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GENGBAO), "--now", clock.now().isoformat(), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=gengbao_env(database.url),
        timeout=120,
    )


def test_the_cli_dry_run_migrate_and_its_refusals(
    app: App, database: Database, clock: FixedClock
) -> None:
    case_id = open_case(app)
    clock.advance(timedelta(hours=30))
    app.catalog.register_text(SHORTER, "hedge_check.yaml")
    dry = _cli(database, clock, "workflow", "migrate", "hedge_check", "--to", "2", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would move 1 open case(s)" in dry.stdout and "overdue at once" in dry.stdout
    assert app.cases.get_case(case_id).version == 1

    usage = _cli(database, clock, "workflow", "migrate", "hedge_check", "--to", "2", "--map", "x")
    assert usage.returncode == 2 and "OLD_STATE=NEW_STATE" in usage.stderr
    alone = _cli(
        database, clock, "workflow", "migrate", "hedge_check", "--to", "2", "--replay", "3"
    )
    assert alone.returncode == 2 and "--replay needs --dry-run" in alone.stderr

    real = _cli(database, clock, "workflow", "migrate", "hedge_check", "--to", "2", "--json")
    assert real.returncode == 0, real.stderr
    answer = json.loads(real.stdout)
    assert answer["moved"] == 1 and answer["cases"][0]["case"] == case_id
    assert app.cases.get_case(case_id).version == 2
    listed = _cli(database, clock, "workflow", "list", "hedge_check")
    assert "v2" in listed.stdout and "open cases: 1" in listed.stdout

    app.catalog.register_text(RENAMED.replace("48h", "47h"), "hedge_check.yaml")  # v3
    refused = _cli(database, clock, "workflow", "migrate", "hedge_check", "--to", "3")
    assert refused.returncode == 1
    assert f"case {case_id} (checking): state 'checking' is not in v3" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_migration_killed_half_way_moves_nothing(
    app: App, database: Database, clock: FixedClock
) -> None:
    """The run is held on its last case (a row it must insert is locked by this test)
    after it has moved the others inside its transaction; kill -9 then leaves every
    case on v1."""
    ids = sorted(open_case(app) for _ in range(30))
    app.catalog.register_text(RENAMED, "hedge_check.yaml")
    before = snapshot(app)
    blocker = database.new_engine().connect()
    holding = blocker.begin()
    blocker.execute(  # the state entry the run writes for the last case, uncommitted
        state_entries.insert().values(case_id=ids[-1], state="inspecting", first_entered_at=START)
    )
    process = subprocess.Popen(
        [
            str(GENGBAO),
            "--now",
            clock.now().isoformat(),
            "workflow",
            "migrate",
            "hedge_check",
            "--to",
            "2",
            "--map",
            "checking=inspecting",
        ],
        cwd=ROOT,
        env=gengbao_env(database.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        held_by = blocker.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        waiting = sa.text(  # sessions waiting on this test's uncommitted row: the run
            "SELECT count(*) FROM pg_stat_activity WHERE :held_by = ANY(pg_blocking_pids(pid))"
        )
        deadline = time.monotonic() + 60
        watching = database.new_engine().execution_options(isolation_level="AUTOCOMMIT")
        with watching.connect() as watcher:  # a fresh view of the server on every poll
            while watcher.execute(waiting, {"held_by": held_by}).scalar_one() == 0:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "\n".join(
                    map(
                        str,
                        watcher.execute(
                            sa.text(
                                "SELECT pid, state, wait_event, left(query, 200) "
                                "FROM pg_stat_activity"
                            )
                        ).all(),
                    )
                )
                time.sleep(0.05)  # polling the server's lock table, not waiting for a timer
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
        holding.rollback()
        blocker.close()
    assert snapshot(app) == before
    assert {app.cases.get_case(i).version for i in ids} == {1}


def test_a_viewer_moves_only_the_cases_of_its_units(app: App, clock: FixedClock) -> None:
    ours = app.cases.create_case("hedge_check", "ddk-js-bh-1", "p-js-bh-1-member", {"plot": "1"}).id
    theirs = open_case(app)  # 八桥镇
    app.catalog.register_text(SHORTER, "hedge_check.yaml")
    town = Viewer("p-js-office")  # 建胜镇
    with pytest.raises(MigrationRefused) as refused:
        app.version_moves.run("hedge_check", 2, case_ids=[ours, theirs], viewer=town)
    assert refused.value.problems == [{"case": theirs, "state": None, "reason": "no such case"}]
    plan = app.version_moves.run("hedge_check", 2, viewer=town)
    assert [m.case for m in plan.moves] == [ours]
    assert app.cases.get_case(theirs).version == 1
