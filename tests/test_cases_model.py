"""A Hypothesis state machine firing random triggers by random actors at a real database.

Invariants after every step: the case is in a declared state; the history has
one row per accepted event (plus creation); the hash chain verifies; a refused
event changed nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from engine.cases.catalog import Catalog
from engine.cases.service import CaseService
from engine.clock import FixedClock
from engine.errors import EventRejected
from engine.store.db import make_engine
from notifications.templates import TemplateStore
from tests.support.farmland import CASE_DATA, LIFECYCLE, REPORTER, UNIT, WORKFLOW_FILE
from tests.support.properties import examples
from tests.support.templates import SqliteTemplate

ACTORS = sorted({step[1] for step in LIFECYCLE} | {REPORTER, "p-ddk-duty", "p-bq-sl-1-member"})
PAYLOADS = [step[2] for step in LIFECYCLE] + [
    {},
    {"area_m2": -5},
    {"stop_note": "x", "report_note": "y"},
    {"decision": "d", "rectify_kind": "拆除", "rectify_by": "2026-12-01", "case_no": "n"},
    {
        "verify_note": "v",
        "close_reason": "不构成违法",
        "check_note": "c",
        "demolition_record": "r",
        "land_type": "一般耕地",
        "area_m2": 100,
        "violation_kind": "大棚房",
    },
]


# From each state, the step the lifecycle takes next (so runs get deep, not only wide).
FORWARD = {
    "discovered" if i == 0 else LIFECYCLE[i - 1][3]: step for i, step in enumerate(LIFECYCLE)
} | {"stopped": ("report", "p-bq-xh-leader", {"report_note": "已制止，报告镇街"}, "reported")}


TEMPLATE = SqliteTemplate("gb-model-")


@pytest.fixture(scope="module", autouse=True)
def _template_removed_at_the_end() -> Iterator[None]:
    yield
    TEMPLATE.remove()


class CaseMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.path = TEMPLATE.copy()
        self.engine = make_engine(f"sqlite:///{self.path}")
        self.clock = FixedClock(datetime(2026, 9, 18, 2, tzinfo=UTC))
        catalog = Catalog(self.engine, self.clock, TemplateStore().check)
        catalog.register_file(WORKFLOW_FILE)
        self.service = CaseService(self.engine, catalog, self.clock)
        self.case_id = ""
        self.applied = 0
        self.states = {
            s.name for s in catalog.compiled_latest("farmland_violation").workflow.states
        }

    @initialize()
    def open_case(self) -> None:
        self.case_id = self.service.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA).id

    @rule(
        trigger=st.sampled_from(
            sorted(
                {s[0] for s in LIFECYCLE} | {"stop", "dismiss", "reject", "auto_report", "bogus"}
            )
        ),
        actor=st.sampled_from(ACTORS),
        payload=st.sampled_from(PAYLOADS),
        minutes=st.integers(0, 600),
    )
    def fire(self, trigger: str, actor: str, payload: dict[str, Any], minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))
        before = self.service.get_case(self.case_id)
        try:
            after = self.service.submit_event(self.case_id, trigger, actor, payload)
        except EventRejected:
            assert self.service.get_case(self.case_id) == before
            return
        self.applied += 1
        event(f"reached {after.state}")
        assert after.revision == before.revision + 1

    @rule(minutes=st.integers(0, 600))
    def step_forward(self, minutes: int) -> None:
        state = self.service.get_case(self.case_id).state
        if state not in FORWARD:
            return
        trigger, actor, payload, reached = FORWARD[state]
        self.fire(trigger, actor, payload, minutes)
        assert self.service.get_case(self.case_id).state == reached

    @invariant()
    def consistent(self) -> None:
        if not self.case_id:
            return
        case = self.service.get_case(self.case_id)
        assert case.state in self.states
        assert len(self.service.history(self.case_id)) == self.applied + 1 == case.revision
        assert self.service.verify(self.case_id).ok
        assert case.open == (case.state not in ("closed", "dismissed"))

    def teardown(self) -> None:
        self.engine.dispose()
        TEMPLATE.discard(self.path)


CaseMachine.TestCase.settings = settings(
    max_examples=examples(30),
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCaseMachine = CaseMachine.TestCase


def test_each_example_removes_its_database_in_teardown() -> None:
    few = settings(max_examples=3, stateful_step_count=3, deadline=None)
    run_state_machine_as_test(CaseMachine, settings=few)
    assert TEMPLATE.folder is not None and TEMPLATE.folder.is_dir()
    assert TEMPLATE.copies() == []
