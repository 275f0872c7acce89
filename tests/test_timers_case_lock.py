"""A sweep fires a case's timers only while it holds the case's row — its deadline
timers and its duties' (签收) alike — so what a held case has due is left whole for the
next sweep, not split between two sweepers.

Two ``timers run-due`` processes once both exited with due timers left unfired: a
duty timer was claimed by its timer row alone, and firing it (inserting rows that
point at the case) held the case against the other sweeper, which then skipped the
case's deadline timers, while the first skipped them because the other held the case.
PostgreSQL only: SQLite's sweep holds the whole database.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from engine.app import App
from engine.clock import FixedClock
from engine.store.tables import cases, timers
from engine.timers.batch import Fired
from tests.support.databases import Database
from tests.support.farmland import LIFECYCLE, open_case

WAIT = 60.0  # seconds a sweep may take before it counts as blocked


def due_of(app: App, case_id: str, at: object) -> dict[int, str]:
    with app.engine.connect() as conn:
        rows = conn.execute(
            sa.select(timers.c.id, timers.c.kind).where(
                timers.c.case_id == case_id, timers.c.status == "pending", timers.c.due_at <= at
            )
        )
        return {r.id: r.kind for r in rows}


def test_a_held_case_keeps_all_its_due_timers_duties_too_for_the_next_sweep(
    database: Database, app: App, clock: FixedClock
) -> None:
    if database.backend == "sqlite":
        pytest.skip("no row locks on SQLite: the whole sweep holds the write lock")
    case_id = open_case(app)
    for trigger, actor, payload, _ in LIFECYCLE[:2]:  # reported: the town must 签收 in 2 h
        app.cases.submit_event(case_id, trigger, actor, payload)
    clock.advance(timedelta(days=10))  # its 签收 and the state's own deadline are past
    now = clock.now()
    due = due_of(app, case_id, now)
    assert any("." in kind for kind in due.values()), due  # a duty's timer (ack.*) …
    assert any("." not in kind for kind in due.values()), due  # … and the state's own

    fired: list[list[Fired]] = []
    with app.engine.connect() as other, other.begin():  # an event in flight on the case
        other.execute(sa.select(cases.c.id).where(cases.c.id == case_id).with_for_update())
        sweep = threading.Thread(target=lambda: fired.append(app.timers.run_due(now)))
        sweep.start()
        sweep.join(WAIT)
        blocked = sweep.is_alive()
    sweep.join()
    assert not blocked, "the sweep waited for the held case instead of leaving it"
    assert [f.timer_id for f in fired[0] if f.timer_id in due] == []
    assert due_of(app, case_id, now) == due  # all still pending

    again = app.timers.run_due(now)
    assert sorted(f.timer_id for f in again if f.timer_id in due) == sorted(due)
    assert due_of(app, case_id, now) == {}
