"""Property: for random events and clock moves, each deadline that passes while the
case stays in its state is recorded exactly once, and none after the case leaves.

The sweep does not run after every clock move (the loop may be slow or down):
a deadline that passed before the case moved on is still recorded once, by
the event that leaves the state.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from engine.app import App
from engine.clock import FixedClock
from engine.settings import Settings
from engine.store.tables import history, overdue_facts, timers
from tests.support.farmland import CASE_DATA, LIFECYCLE, REPORTER, UNIT, WORKFLOW_FILE
from tests.support.properties import examples
from tests.support.templates import SqliteTemplate

FORWARD = {
    "discovered" if i == 0 else LIFECYCLE[i - 1][3]: step for i, step in enumerate(LIFECYCLE)
}
TEMPLATE = SqliteTemplate("gb-timers-model-")


@pytest.fixture(scope="module", autouse=True)
def _template_removed_at_the_end() -> Iterator[None]:
    yield
    TEMPLATE.remove()


class DeadlineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.path = TEMPLATE.copy()
        self.clock = FixedClock(datetime(2026, 9, 18, 2, tzinfo=UTC))
        self.app = App(Settings(database_url=f"sqlite:///{self.path}"), self.clock)
        self.app.catalog.register_file(WORKFLOW_FILE)
        self.case_id = ""
        # The last sweep's instant and the newest history entry it could see:
        # a sweep only records deadlines of states entered before it ran, even
        # when an event lands at the same instant just after it.
        self.last_sweep: datetime | None = None
        self.swept_seq = 0

    @initialize()
    def open_case(self) -> None:
        self.case_id = self.app.cases.create_case(
            "farmland_violation", UNIT, REPORTER, CASE_DATA
        ).id

    @rule(minutes=st.integers(1, 60 * 24 * 12), sweep=st.booleans())
    def time_passes(self, minutes: int, sweep: bool) -> None:
        self.clock.advance(timedelta(minutes=minutes))
        if sweep:
            self.app.timers.run_due()
            self.last_sweep = self.clock.now()
            self.swept_seq = self._newest_seq()

    def _newest_seq(self) -> int:
        with self.app.engine.connect() as conn:
            newest = conn.execute(
                sa.select(sa.func.max(history.c.seq)).where(history.c.case_id == self.case_id)
            ).scalar()
        return int(newest or 0)

    @rule()
    def step_forward(self) -> None:
        state = self.app.cases.get_case(self.case_id).state
        if state in FORWARD:
            trigger, actor, payload, _ = FORWARD[state]
            self.app.cases.submit_event(self.case_id, trigger, actor, payload)

    @invariant()
    def each_passed_deadline_recorded_once(self) -> None:
        if not self.case_id:
            return
        with self.app.engine.connect() as conn:
            entries = conn.execute(
                sa.select(history.c.seq, history.c.at)
                .where(history.c.case_id == self.case_id)
                .order_by(history.c.seq)
            ).all()
            deadlines = {
                r.case_revision: r.due_at
                for r in conn.execute(
                    sa.select(timers).where(
                        timers.c.case_id == self.case_id, timers.c.kind == "deadline"
                    )
                )
            }
            facts: dict[int, list[Any]] = {}
            for f in conn.execute(
                sa.select(overdue_facts.c.recorded_at, timers.c.case_revision)
                .join(timers, timers.c.id == overdue_facts.c.timer_id)
                .where(overdue_facts.c.case_id == self.case_id, overdue_facts.c.rung.is_(None))
            ):
                facts.setdefault(f.case_revision, []).append(f.recorded_at)
        for i, (seq, _) in enumerate(entries):
            due = deadlines.get(seq)
            left = entries[i + 1].at if i + 1 < len(entries) else None
            recorded = facts.get(seq, [])
            if due is None:
                assert recorded == []
                continue
            # Left: the leaving event records a passed deadline.  Still in the
            # state: only a sweep that ran after the state was entered does.
            swept_after_entry = seq <= self.swept_seq
            horizon = left if left is not None else (self.last_sweep if swept_after_entry else None)
            expected = 1 if horizon is not None and due <= horizon else 0
            assert len(recorded) == expected, (seq, due, left, self.last_sweep, recorded)
            if left is not None:
                assert all(at <= left for at in recorded)

    def teardown(self) -> None:
        self.app.close()
        TEMPLATE.discard(self.path)


DeadlineMachine.TestCase.settings = settings(
    max_examples=examples(30),
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestDeadlines = DeadlineMachine.TestCase


def test_an_event_right_after_a_sweep_into_a_passed_deadline_is_not_yet_recorded() -> None:
    """The case Hypothesis once found: a sweep, then at the same instant an event
    into a state whose ``until:`` deadline (2026-10-30) has already passed.  No
    sweep ran after the entry, so nothing is recorded yet; the next sweep does."""
    machine = DeadlineMachine()
    try:
        machine.open_case()
        while machine.app.cases.get_case(machine.case_id).state != "filed":
            machine.step_forward()
        machine.time_passes(minutes=60 * 24 * 60, sweep=True)  # late November
        machine.step_forward()  # decide → rectifying, rectify_by long past
        assert machine.app.cases.get_case(machine.case_id).state == "rectifying"
        machine.each_passed_deadline_recorded_once()
        machine.time_passes(minutes=1, sweep=True)
        machine.each_passed_deadline_recorded_once()
        with machine.app.engine.connect() as conn:
            facts = conn.execute(
                sa.select(overdue_facts.c.state).where(overdue_facts.c.rung.is_(None))
            ).scalars()
            assert "rectifying" in list(facts)
    finally:
        machine.teardown()


def test_each_example_removes_its_database_in_teardown() -> None:
    few = settings(max_examples=3, stateful_step_count=3, deadline=None)
    run_state_machine_as_test(DeadlineMachine, settings=few)
    assert TEMPLATE.folder is not None and TEMPLATE.folder.is_dir()
    assert TEMPLATE.copies() == []
