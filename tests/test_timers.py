"""Timers on SQLite and PostgreSQL: rows with the state change, sweeps on a fake clock.

No test sleeps: the clock is a FixedClock that the test moves, and the sweep
is called directly (the loop is tested here once, by waiting on an event the
loop sets after its first sweep; its sleeping and waking in test_timers_loop.py).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from engine.app import App
from engine.clock import FixedClock
from engine.store.tables import notifications, overdue_facts, timers
from engine.timers import SweepLoop
from tests.support.farmland import local, open_case, step
from tests.support.queries import rows


def pending(app: App, case_id: str) -> list[tuple[str, int | None, datetime]]:
    return [
        (t.kind, t.rung, t.due_at) for t in rows(app, timers, case_id=case_id, status="pending")
    ]


def test_entering_a_state_writes_its_timers(app: App) -> None:
    case_id = open_case(app)
    # discovered: within 2h, remind [1h, 30m], rungs after 0m, 2h, 24h
    assert sorted(pending(app, case_id), key=lambda t: (t[2], t[0])) == [
        ("reminder", None, local(2026, 9, 18, 11)),
        ("reminder", None, local(2026, 9, 18, 11, 30)),
        ("deadline", None, local(2026, 9, 18, 12)),
        ("escalation", 0, local(2026, 9, 18, 12)),
        ("escalation", 1, local(2026, 9, 18, 14)),
        ("escalation", 2, local(2026, 9, 19, 12)),
    ]
    assert app.cases.get_case(case_id).as_dict()["state"] == "discovered"


def test_leaving_a_state_cancels_its_timers_in_the_same_transaction(
    app: App, clock: FixedClock
) -> None:
    case_id = open_case(app)
    clock.advance(timedelta(minutes=20))
    step(app, case_id, 0)  # stop_fail → stop_failed
    states = {t.state: t.status for t in rows(app, timers, case_id=case_id)}
    assert states == {"discovered": "cancelled", "stop_failed": "pending"}
    clock.set(local(2026, 9, 18, 12, 30))
    fired = app.timers.run_due()
    assert {f.state for f in fired} == {"stop_failed"}


def test_reminders_before_and_rungs_after_the_deadline(app: App, clock: FixedClock) -> None:
    case_id = open_case(app)
    clock.set(local(2026, 9, 18, 10, 59))
    assert app.timers.run_due() == []
    clock.set(local(2026, 9, 18, 11, 0))
    assert [(f.kind, f.outcome) for f in app.timers.run_due()] == [("reminder", "fired")]
    clock.set(local(2026, 9, 18, 12, 0))
    assert [(f.kind, f.rung) for f in app.timers.run_due()] == [
        ("reminder", None),
        ("deadline", None),
        ("escalation", 0),
    ]
    case = app.cases.get_case(case_id)
    assert case.escalation_level == 1
    kinds = [(n.kind, n.template, tuple(n.roles)) for n in rows(app, notifications)]
    assert kinds[-1] == ("escalation", "overdue", ("town.duty", "town.office", "village.leader"))
    facts = rows(app, overdue_facts, case_id=case_id)
    assert [(f.state, f.rung, f.level) for f in facts] == [
        ("discovered", None, 0),
        ("discovered", 0, 1),
    ]
    assert app.timers.run_due() == []  # nothing fires twice


def test_a_working_day_deadline_spans_the_national_day_holidays(
    app: App, clock: FixedClock
) -> None:
    case_id = open_case(app)
    for n in range(2):
        step(app, case_id, n)  # stop_fail, report
    clock.set(local(2026, 9, 20, 9))  # Sunday, a make-up working day
    step(app, case_id, 2)  # confirm → district_handling: 10 working days
    deadline = [t for t in pending(app, case_id) if t[0] == "deadline"]
    # 09-21..24 (4), 09-28..30 (7), 10-08, 10-09 (9), Saturday 10-10 make-up day (10)
    assert deadline == [("deadline", None, local(2026, 10, 11, 0))]
    assert app.cases.get_case(case_id).as_dict()["state"] == "district_handling"


def test_until_a_date_field_is_the_end_of_that_day(app: App) -> None:
    case_id = open_case(app)
    for n in range(5):
        step(app, case_id, n)  # ... decide → rectifying, rectify_by 2026-10-30
    deadline = [t for t in pending(app, case_id) if t[0] == "deadline"]
    assert deadline == [("deadline", None, local(2026, 10, 31, 0))]


def test_from_counts_from_the_first_entry_of_another_state(app: App, clock: FixedClock) -> None:
    case_id = open_case(app)
    for n in range(4):
        step(app, case_id, n)  # → filed
    filed_at = clock.now()
    clock.advance(timedelta(days=20))
    app.cases.submit_event(
        case_id, "extend_decision", "p-ddk-planning", {"extend_reason": "案情复杂"}
    )
    deadline = [t for t in pending(app, case_id) if t[0] == "deadline"]
    assert deadline == [("deadline", None, filed_at + timedelta(days=90))]


def test_a_reminder_can_repeat_until_the_deadline(app: App, clock: FixedClock) -> None:
    case_id = open_case(app)
    step(app, case_id, 0)
    step(app, case_id, 1)  # → reported: within 24h, remind every 8h
    entered = clock.now()
    fired = []
    for hours in (7, 9, 17, 30, 40):
        clock.set(entered + timedelta(hours=hours))
        fired += [f.due - entered for f in app.timers.run_due() if f.kind == "reminder"]
    assert fired == [timedelta(hours=8), timedelta(hours=16)]


def test_a_repeating_reminder_after_downtime_sends_one_not_a_burst(
    app: App, clock: FixedClock
) -> None:
    case_id = open_case(app)
    step(app, case_id, 0)
    step(app, case_id, 1)  # → reported: within 24h, remind every 8h
    entered = clock.now()
    clock.set(entered + timedelta(hours=17))  # down through the 8h and 16h reminders
    fired = sorted(f.kind for f in app.timers.run_due())
    # one reminder, not two; and reported's 签收 (within 2h) ran its course once
    assert fired == ["ack.deadline", "ack.escalation", "ack.reminder", "reminder"]
    assert [t[2] - entered for t in pending(app, case_id) if t[0] == "reminder"] == []


def test_catch_up_after_downtime_fires_oldest_first_once(app: App, clock: FixedClock) -> None:
    cases = [open_case(app) for _ in range(3)]
    clock.set(local(2026, 9, 21, 9))  # the service was down all weekend
    fired = app.timers.run_due()
    assert [f.due for f in fired] == sorted(f.due for f in fired)
    assert {f.case for f in fired} == set(cases)
    assert len(fired) == 3 * 6
    assert (
        max(f.late_seconds for f in fired) == (clock.now() - local(2026, 9, 18, 11)).total_seconds()
    )
    assert app.timers.run_due() == []


def test_a_deadline_passed_but_not_yet_swept_is_recorded_when_the_case_moves_on(
    app: App, clock: FixedClock
) -> None:
    case_id = open_case(app)
    clock.set(local(2026, 9, 18, 12, 30))  # deadline 12:00 passed; no sweep ran
    step(app, case_id, 0)
    facts = rows(app, overdue_facts, case_id=case_id)
    assert [(f.state, f.rung) for f in facts] == [("discovered", None), ("discovered", 0)]
    # ... and the old state's timers never fire afterwards
    clock.set(local(2026, 9, 20, 12))
    assert all(f.state == "stop_failed" for f in app.timers.run_due())


def test_an_escalation_rung_fires_its_trigger_as_the_system(app: App, clock: FixedClock) -> None:
    case_id = open_case(app)
    step(app, case_id, 0)  # → stop_failed at 10:00; deadline 12:00; rung 2 (after 1h) auto_report
    clock.set(local(2026, 9, 18, 13))
    fired = app.timers.run_due()
    assert fired[-1].detail.endswith("fired auto_report → reported")
    history = app.cases.history(case_id)
    assert (history[-1].actor, history[-1].trigger) == ("system", "auto_report")
    assert app.cases.get_case(case_id).state == "reported"
    assert app.cases.verify(case_id).ok


def test_case_show_lists_pending_timers_and_facts(app: App, clock: FixedClock) -> None:
    case_id = open_case(app)
    clock.set(local(2026, 9, 18, 12))
    app.timers.run_due()
    described = app.timers.describe(case_id)
    assert [(t["kind"], t["rung"]) for t in described["timers"]] == [
        ("escalation", 1),
        ("escalation", 2),
    ]
    assert [(f["rung"], f["level"]) for f in described["overdue"]] == [(None, 0), (0, 1)]


def test_the_loop_sweeps_at_start(app: App, clock: FixedClock) -> None:
    case_id = open_case(app)
    clock.set(local(2026, 9, 18, 12))
    swept = threading.Event()
    counts: list[int] = []

    def after(n: int) -> None:
        counts.append(n)
        swept.set()

    loop = SweepLoop(app.timers, interval_seconds=3600, after_sweep=after)
    loop.start()
    try:
        assert swept.wait(timeout=30), "the first sweep did not run"
    finally:
        loop.stop()
    assert counts[0] == 4  # two reminders, the deadline and the first rung: caught up at start
    assert app.cases.get_case(case_id).escalation_level == 1


def test_a_stale_timer_never_fires(app: App, clock: FixedClock) -> None:
    """Even a timer left pending by mistake is checked against the case's state."""
    case_id = open_case(app)
    step(app, case_id, 0)
    with app.engine.begin() as conn:  # simulate a timer row nobody cancelled
        conn.execute(
            sa.update(timers).where(timers.c.state == "discovered").values(status="pending")
        )
    clock.set(local(2026, 9, 18, 11, 30))
    fired = app.timers.run_due()
    old = [f for f in fired if f.state == "discovered"]
    assert len(old) == 2 and {f.outcome for f in old} == {"stale"}
    assert [
        n.context["deadline"]["state"] for n in rows(app, notifications) if n.kind == "reminder"
    ] == ["stop_failed", "stop_failed"]


def test_local_times_in_json(app: App) -> None:
    case_id = open_case(app)
    first = min(pending(app, case_id), key=lambda t: t[2])
    assert first[2] == datetime(2026, 9, 18, 3, 0, tzinfo=UTC)
