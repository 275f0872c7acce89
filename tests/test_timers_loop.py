"""The sweep loop sleeps until the next due timer, or until a commit writes one due sooner.

The loop runs its real thread on the test's fake clock; nothing sleeps to wait
for a timer.  The loop reports each planned wake through ``on_wait`` (a
queue the test reads, with a timeout only as a guard against a hang), and a
commit's wake-up is counted synchronously in the committing thread.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from engine.app import App
from engine.clock import FixedClock
from engine.store.tables import cases, timers
from engine.timers import SweepLoop
from engine.timers.loop import RETRY_HELD_SECONDS
from tests.support.farmland import START, local, open_case

GUARD = 60.0  # seconds: only a hang ever waits this long

Plan = tuple[datetime, float]


class Watched:
    """A running SweepLoop whose planned wakes and sweeps the test reads in order."""

    def __init__(self, app: App, interval: float, *, follow_due: bool = True) -> None:
        self.plans: queue.Queue[Plan] = queue.Queue()
        self.swept: queue.Queue[int] = queue.Queue()
        self.loop = SweepLoop(
            app.timers,
            interval,
            after_sweep=self.swept.put,
            on_wait=lambda at, seconds: self.plans.put((at, seconds)),
            follow_due=follow_due,
        )

    def next_plan(self) -> Plan:
        try:
            return self.plans.get(timeout=GUARD)
        except queue.Empty:
            raise AssertionError("the loop planned no wake") from None

    def next_sweep(self) -> int:
        try:
            return self.swept.get(timeout=GUARD)
        except queue.Empty:
            raise AssertionError("the loop did not sweep") from None


@contextmanager
def running(app: App, interval: float, *, follow_due: bool = True) -> Iterator[Watched]:
    watched = Watched(app, interval, follow_due=follow_due)
    watched.loop.start()
    try:
        yield watched
    finally:
        watched.loop.stop()
    assert not watched.loop.running


def add_timer(app: App, case_id: str, due: datetime) -> None:
    """A pending reminder of *case_id* due at *due*, written in its own transaction."""
    with app.engine.begin() as conn:
        case = conn.execute(sa.select(cases).where(cases.c.id == case_id)).one()
        conn.execute(
            sa.insert(timers).values(
                case_id=case_id,
                state=case.state,
                case_revision=case.revision,
                kind="reminder",
                deadline_at=due + timedelta(hours=1),
                due_at=due,
                status="pending",
                created_at=START,
            )
        )


def test_the_loop_sleeps_until_the_next_due_timer(app: App) -> None:
    open_case(app)  # at START (10:00): reminders at 11:00 and 11:30, the deadline at 12:00
    first = local(2026, 9, 18, 11)
    assert app.timers.next_due() == first
    with running(app, interval=86_400) as watched:
        assert watched.next_sweep() == 0  # the sweep at start: nothing due yet
        assert watched.next_plan() == (first, 3600.0)


def test_the_interval_bounds_the_sleep(app: App) -> None:
    open_case(app)
    with running(app, interval=600) as watched:
        assert watched.next_plan() == (START + timedelta(seconds=600), 600.0)


def test_the_polling_loop_ignores_the_next_due_time(app: App) -> None:
    """``follow_due=False``: the old loop (bench/timers.py's baseline) sweeps every
    interval, however soon the next timer is due."""
    open_case(app)
    with running(app, interval=86_400, follow_due=False) as watched:
        assert watched.next_plan() == (START + timedelta(days=1), 86_400.0)


def test_a_commit_writing_a_sooner_timer_interrupts_the_sleep(app: App, clock: FixedClock) -> None:
    with running(app, interval=7200) as watched:
        assert watched.next_sweep() == 0  # at start
        assert watched.next_plan() == (START + timedelta(hours=2), 7200.0)  # nothing pending
        woken = watched.loop.wakeup.wakes
        case_id = open_case(app)  # its first reminder, 11:00, is before the planned 12:00
        assert watched.loop.wakeup.wakes == woken + 1  # counted in this thread, at checkin
        assert watched.next_sweep() == 0
        assert watched.next_plan() == (local(2026, 9, 18, 11), 3600.0)

        # A timer due after the planned wake, or one whose transaction rolled back,
        # wakes nobody.
        woken = watched.loop.wakeup.wakes
        add_timer(app, case_id, local(2026, 9, 18, 11, 5))
        with pytest.raises(RuntimeError), app.engine.begin() as conn:
            conn.execute(sa.update(timers).values(due_at=START))  # every timer due at once
            raise RuntimeError("rolled back")
        assert watched.loop.wakeup.wakes == woken
        assert not watched.loop.wakeup.is_set()

        # The fake clock reaches 11:00: told so, the loop fires the reminder at once
        # and plans the next one.
        clock.set(local(2026, 9, 18, 11))
        watched.loop.wake()
        assert watched.next_sweep() == 1
        assert watched.next_plan() == (local(2026, 9, 18, 11, 5), 300.0)


def test_re_arming_a_timer_wakes_the_loop(app: App, clock: FixedClock) -> None:
    """An UPDATE that makes a timer pending again (``timers retry``) or moves its due
    time (``timers recompute``) wakes the loop: its due time is not in the statement."""
    case_id = open_case(app)
    with running(app, interval=86_400) as watched:
        assert watched.next_plan()[0] == local(2026, 9, 18, 11)
        woken = watched.loop.wakeup.wakes
        with app.engine.begin() as conn:
            conn.execute(
                sa.update(timers)
                .where(timers.c.case_id == case_id, timers.c.kind == "deadline")
                .values(due_at=START + timedelta(minutes=5))
            )
        assert watched.loop.wakeup.wakes == woken + 1
        assert watched.next_plan() == (START + timedelta(minutes=5), 300.0)


def test_a_due_timer_that_could_not_fire_is_retried_after_a_doubling_backoff(
    app: App, clock: FixedClock
) -> None:
    loop = SweepLoop(app.timers, interval_seconds=1.0)
    after = [loop.next_wake(-1) - START for _ in range(6)]  # the sweep itself failed
    seconds = [RETRY_HELD_SECONDS * 2**n for n in range(6)]
    assert after == [timedelta(seconds=min(1.0, s)) for s in seconds]
    assert loop.next_wake(0) == START + timedelta(seconds=1)  # nothing due: the interval
    open_case(app)
    swept_at = clock.set(local(2026, 9, 18, 11))  # a reminder due at the sweep, still pending
    assert loop.next_wake(0, swept_at) == swept_at + timedelta(seconds=RETRY_HELD_SECONDS)
    assert loop.next_wake(0, swept_at) == swept_at + timedelta(seconds=2 * RETRY_HELD_SECONDS)
    assert loop.next_wake(3, swept_at) == swept_at + timedelta(seconds=RETRY_HELD_SECONDS)
    # Due after the sweep's instant (it fell due while the sweep ran): sweep again at once.
    clock.advance(timedelta(seconds=1))
    assert loop.next_wake(3, swept_at - timedelta(seconds=1)) == local(2026, 9, 18, 11)


def test_next_due_is_the_earliest_pending_or_failed_retry(app: App, clock: FixedClock) -> None:
    assert app.timers.next_due() is None
    case_id = open_case(app)
    assert app.timers.next_due() == local(2026, 9, 18, 11)
    retry_at = START + timedelta(minutes=3)
    with app.engine.begin() as conn:
        conn.execute(
            sa.update(timers)
            .where(timers.c.case_id == case_id, timers.c.kind == "deadline")
            .values(status="failed", next_attempt_at=retry_at)
        )
    assert app.timers.next_due() == retry_at
