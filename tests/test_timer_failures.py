"""One bad timer never stops the others (issue 10, item 2), on SQLite and PostgreSQL.

A timer whose effects raise — a row of a kind no code handles, a handler
that raises, an escalation whose trigger blows up — becomes ``failed`` with
its attempts, last error and a backoff next attempt; everything else in its
batch and in later batches fires.  The sweep retries it after the backoff,
gives up after ``max_attempts``, and ``timers retry`` re-arms it.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from engine.api.metrics import Counters, render
from engine.app import App
from engine.clock import FixedClock
from engine.errors import TimerNotFailed, UnknownTimer
from engine.store.tables import cases, notifications, overdue_facts, timers
from engine.timers.retry import RetryPolicy
from tests.support.databases import Database
from tests.support.farmland import LIFECYCLE, START, local, open_case
from tests.support.paths import GENGBAO, ROOT
from tests.support.queries import rows

AT_DEADLINE = local(2026, 9, 18, 12, 0)  # reminders, deadline and rung 0 due
POLICY = RetryPolicy(max_attempts=3, backoff_seconds=60, backoff_max_seconds=600)


@pytest.fixture
def app_settings() -> dict[str, Any]:
    retry = {"max_attempts": 3, "backoff_seconds": 60, "backoff_max_seconds": 600}
    return {"timers": {"retry": retry}}


def add_timer(app: App, kind: str, case_id: str | None, due: datetime, **extra: Any) -> int:
    """A pending row due at *due*, current for *case_id* (its state and revision)."""
    state, revision = "remind", 0
    if case_id is not None:
        with app.engine.connect() as conn:
            row = conn.execute(sa.select(cases).where(cases.c.id == case_id)).one()
        state, revision = row.state, row.revision
    with app.engine.begin() as conn:
        new_id: int = conn.execute(
            sa.insert(timers)
            .values(
                case_id=case_id,
                state=state,
                case_revision=revision,
                kind=kind,
                rung=None,
                deadline_at=due,
                due_at=due,
                status="pending",
                created_at=START,
                **extra,
            )
            .returning(timers.c.id)
        ).scalar_one()
    return new_id


def timer(app: App, timer_id: int) -> Any:
    with app.engine.connect() as conn:
        return conn.execute(sa.select(timers).where(timers.c.id == timer_id)).one()


def case_timers(app: App, case_id: str) -> list[Any]:
    return rows(app, timers, case_id=case_id)


def test_the_retry_policy_comes_from_the_settings(app: App) -> None:
    assert app.timers.retry_policy == POLICY


# -- the batch goes on ----------------------------------------------------------


def test_a_row_of_an_unknown_kind_fails_alone_and_every_other_timer_fires(
    app: App, clock: FixedClock
) -> None:
    first, second = open_case(app), open_case(app)
    bad = add_timer(app, "bogus", first, START)  # the oldest due row: it leads every batch
    app.timers.batch = 3  # 12 case timers and the bad one: five batches
    clock.set(AT_DEADLINE)
    fired = app.timers.run_due()

    assert [(f.timer_id, f.outcome) for f in fired if f.outcome != "fired"] == [(bad, "failed")]
    assert len([f for f in fired if f.outcome == "fired"]) == 2 * 4  # 2 reminders, deadline, rung 0
    row = timer(app, bad)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error.startswith("UnknownTimerKind: timer")
    assert "unknown kind 'bogus'" in row.last_error
    assert row.next_attempt_at == AT_DEADLINE + timedelta(seconds=60)
    assert row.fired_at is None
    for case_id in (first, second):
        assert app.cases.get_case(case_id).escalation_level == 1
        statuses = {(t.kind, t.rung): t.status for t in case_timers(app, case_id) if t.id != bad}
        assert statuses[("deadline", None)] == "fired"
        assert statuses[("escalation", 0)] == "fired"
    assert app.timers.run_due() == []  # backing off: not retried within the same minute

    # Later sweeps still fire everything else while the bad row keeps failing.
    clock.set(local(2026, 9, 18, 14, 0))
    later = app.timers.run_due()
    assert {(f.kind, f.rung, f.outcome) for f in later} == {
        ("escalation", 1, "fired"),
        ("bogus", None, "failed"),
    }
    assert timer(app, bad).attempts == 2


def test_a_stray_row_without_a_case_or_handler_fails_alone(app: App, clock: FixedClock) -> None:
    case_id = open_case(app)
    bad = add_timer(app, "bogus", None, START)
    clock.set(AT_DEADLINE)
    fired = app.timers.run_due()
    assert [(f.timer_id, f.outcome) for f in fired if f.outcome != "fired"] == [(bad, "failed")]
    assert app.cases.get_case(case_id).escalation_level == 1
    assert "unknown kind 'bogus'" in timer(app, bad).last_error


def test_a_handler_that_raises_fails_its_timer_and_rolls_back_only_its_own_writes(
    app: App, clock: FixedClock
) -> None:
    case_id = open_case(app)

    def explode(conn: Connection, row: Any, now: datetime) -> str:
        conn.execute(sa.update(cases).values(escalation_level=9))  # must not survive
        raise RuntimeError("the handler is broken")

    app.timers.handlers["boom"] = explode
    bad = add_timer(app, "boom", None, START)
    clock.set(AT_DEADLINE)
    fired = app.timers.run_due()

    assert [f.outcome for f in fired].count("fired") == 4
    failed = [f for f in fired if f.outcome == "failed"]
    assert [f.timer_id for f in failed] == [bad]
    assert "RuntimeError: the handler is broken" in failed[0].detail
    assert "attempt 1 of 3" in failed[0].detail
    assert app.cases.get_case(case_id).escalation_level == 1  # rung 0, not the handler's 9
    assert timer(app, bad).last_error == "RuntimeError: the handler is broken"


def test_a_batched_write_that_fails_is_written_again_timer_by_timer(
    app: App, clock: FixedClock
) -> None:
    """The batch's effects go in one executemany per table; when that fails (here the
    notification of one reminder collides with a row already holding its dedupe key),
    the batch is written again one timer at a time: only that timer fails."""
    first = open_case(app)
    open_case(app)  # a second case, whose reminders fire
    reminder = min(
        (t for t in case_timers(app, first) if t.kind == "reminder"), key=lambda t: t.due_at
    )
    with app.engine.begin() as conn:
        conn.execute(
            sa.insert(notifications).values(
                case_id=first,
                kind="reminder",
                template="reminder",
                roles=[],
                context={},
                dedupe_key=f"timer:{reminder.id}",
                status="sent",
                created_at=START,
            )
        )
    clock.set(local(2026, 9, 18, 11, 45))  # both reminders of both cases are due
    fired = app.timers.run_due()

    assert [(f.timer_id, f.outcome) for f in fired if f.outcome != "fired"] == [
        (reminder.id, "failed")
    ]
    sent = [f.timer_id for f in fired if f.outcome == "fired"]
    assert len(sent) == 2 * 2 - 1
    row = timer(app, reminder.id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error.startswith("IntegrityError")
    keys = [n.dedupe_key for n in rows(app, notifications)]
    assert sorted(keys) == sorted(f"timer:{i}" for i in [reminder.id, *sent])  # the old row
    assert {timer(app, i).status for i in sent} == {"fired"}


def test_an_escalation_whose_effect_raises_leaves_no_partial_effects(
    app: App, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stop_failed's rung 2 fires ``auto_report``: here the trigger blows up mid-effect."""
    case_id = open_case(app)
    other = open_case(app)
    app.cases.submit_event(case_id, *LIFECYCLE[0][:3])  # → stop_failed at 10:00, deadline 12:00
    real = app.cases.fire_as_system

    def broken(conn: Connection, target: str, trigger: str) -> Any:
        if target == case_id:
            raise ValueError("the rung's trigger is broken")
        return real(conn, target, trigger)

    monkeypatch.setattr(app.cases, "fire_as_system", broken)
    clock.set(local(2026, 9, 18, 13, 0))
    fired = app.timers.run_due()

    failed = [f for f in fired if f.outcome == "failed"]
    assert [(f.case, f.kind, f.rung) for f in failed] == [(case_id, "escalation", 1)]
    bad = failed[0].timer_id
    # Its notification, level and overdue fact rolled back with it; rung 0 (which has
    # no trigger) and the other case's timers fired.
    assert [n.dedupe_key for n in rows(app, notifications)].count(f"timer:{bad}") == 0
    assert [f.timer_id for f in rows(app, overdue_facts)].count(bad) == 0
    assert app.cases.get_case(case_id).escalation_level == 1
    assert app.cases.get_case(case_id).state == "stop_failed"
    assert app.cases.get_case(other).escalation_level == 1

    # Fixed: the backoff retry fires it, with its effects, exactly once.
    monkeypatch.setattr(app.cases, "fire_as_system", real)
    clock.advance(timedelta(seconds=60))
    retried = app.timers.run_due()
    assert [(f.timer_id, f.outcome) for f in retried] == [(bad, "fired")]
    assert retried[0].detail.endswith("fired auto_report → reported")
    assert app.cases.get_case(case_id).state == "reported"
    assert [n.dedupe_key for n in rows(app, notifications)].count(f"timer:{bad}") == 1
    row = timer(app, bad)
    assert (row.status, row.next_attempt_at) == ("fired", None)
    assert app.cases.verify(case_id).ok


# -- backoff, giving up, re-arming -----------------------------------------------


def test_backoff_retries_then_gives_up_and_retry_re_arms(app: App, clock: FixedClock) -> None:
    attempts: list[datetime] = []
    broken = True

    def flaky(conn: Connection, row: Any, now: datetime) -> str:
        attempts.append(now)
        if broken:
            raise RuntimeError(f"attempt {len(attempts)}")
        return "done"

    app.timers.handlers["flaky"] = flaky
    bad = add_timer(app, "flaky", None, START)
    for minutes in range(0, 30):  # a sweep every minute for half an hour
        app.timers.run_due(START + timedelta(minutes=minutes))
    # 1st at 10:00, then +60 s, +120 s: three attempts, then no next attempt.
    assert attempts == [START, START + timedelta(minutes=1), START + timedelta(minutes=3)]
    row = timer(app, bad)
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 3, None)
    assert row.last_error == "RuntimeError: attempt 3"
    assert app.timers.next_due() is None  # nothing left to do until someone re-arms it

    broken = False
    rearmed = app.timers.retry(bad)
    assert (rearmed["status"], rearmed["attempts"]) == ("pending", 0)
    clock.set(START + timedelta(hours=1))
    assert [(f.timer_id, f.outcome, f.detail) for f in app.timers.run_due()] == [
        (bad, "fired", "done")
    ]
    assert timer(app, bad).status == "fired"


def test_retry_refuses_what_has_not_failed(app: App) -> None:
    case_id = open_case(app)
    pending = case_timers(app, case_id)[0].id
    with pytest.raises(TimerNotFailed, match=f"timer {pending} is pending, not failed"):
        app.timers.retry(pending)
    with pytest.raises(UnknownTimer, match="unknown timer 999999"):
        app.timers.retry(999999)
    assert timer(app, pending).status == "pending"


def test_a_failed_timer_of_a_case_that_moved_on_is_cancelled_never_fired(
    app: App, clock: FixedClock
) -> None:
    case_id = open_case(app)
    bad = add_timer(app, "bogus", case_id, START)
    app.timers.run_due()
    assert timer(app, bad).status == "failed"
    app.cases.submit_event(case_id, *LIFECYCLE[0][:3])  # the case leaves "discovered"
    row = timer(app, bad)
    assert (row.status, row.next_attempt_at) == ("cancelled", None)

    # Even one left failed by mistake is checked against its case before it fires.
    with app.engine.begin() as conn:
        conn.execute(
            sa.update(timers)
            .where(timers.c.id == bad)
            .values(status="failed", next_attempt_at=START)
        )
    fired = app.timers.run_due()
    assert [(f.timer_id, f.outcome) for f in fired] == [(bad, "stale")]
    assert timer(app, bad).status == "cancelled"


# -- where failures are visible ----------------------------------------------------


def test_case_show_and_metrics_show_failed_timers(app: App, clock: FixedClock) -> None:
    case_id = open_case(app)
    bad = add_timer(app, "bogus", case_id, START)
    app.timers.run_due()
    described = app.timers.describe(case_id)
    assert [(t["id"], t["kind"], t["attempts"]) for t in described["failed_timers"]] == [
        (bad, "bogus", 1)
    ]
    next_attempt = datetime.fromisoformat(described["failed_timers"][0]["next_attempt_at"])
    assert next_attempt == START + timedelta(seconds=60)
    text = render(app.ops.gauges(), Counters(), loop_running=False, sweeps=0)
    assert 'gengbao_timers_failed{kind="bogus",retry="scheduled"} 1' in text
    assert "# TYPE gengbao_timers_failed gauge" in text


# -- the command line --------------------------------------------------------------


def gengbao(database: Database, *args: str, now: datetime = AT_DEADLINE) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GENGBAO_CONFIG"}
    env["GENGBAO_DATABASE_URL"] = database.url
    done = subprocess.run(
        [GENGBAO, "--now", now.isoformat(), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def test_the_cli_runs_lists_and_retries_failed_timers(
    database: Database, app: App, clock: FixedClock
) -> None:
    case_id = open_case(app)
    bad = add_timer(app, "bogus", case_id, START)

    status, out, err = gengbao(database, "timers", "run-due")
    assert "internal error" not in err
    assert status == 0, err
    assert "4 timer(s) fired, 1 failed" in out
    assert "unknown kind 'bogus'" in out

    status, out, err = gengbao(database, "timers", "list", "--status", "failed", "--json")
    assert status == 0, err
    listed = json.loads(out)
    assert listed == [
        {
            "id": bad,
            "case": case_id,
            "rule": None,
            "state": "discovered",
            "kind": "bogus",
            "rung": None,
            "level": None,
            "status": "failed",
            "due": START.astimezone(ZoneInfo("UTC")).isoformat(),
            "deadline": START.astimezone(ZoneInfo("UTC")).isoformat(),
            "attempts": 1,
            "last_error": listed[0]["last_error"],
            "next_attempt_at": (AT_DEADLINE + timedelta(seconds=60))
            .astimezone(ZoneInfo("UTC"))
            .isoformat(),
            "fired_at": None,
            "detail": None,
        }
    ]
    assert "unknown kind 'bogus'" in listed[0]["last_error"]

    status, out, err = gengbao(database, "case", "show", case_id)
    assert status == 0, err
    assert f"FAILED bogus (timer {bad}" in out

    status, out, err = gengbao(database, "timers", "retry", str(bad))
    assert (status, err) == (0, "")
    assert f"timer {bad} re-armed" in out
    status, out, err = gengbao(database, "timers", "retry", str(bad))
    assert status == 1
    assert f"gengbao: error: timer {bad} is pending, not failed" in err
    assert "Traceback" not in err and "internal error" not in err
