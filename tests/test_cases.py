"""The case service on SQLite and PostgreSQL: lifecycle, rejections, idempotency, races, history."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from engine.cases.service import CaseFilter, CaseService
from engine.clock import FixedClock
from engine.errors import (
    EventRejected,
    GuardFailed,
    IdempotencyMismatch,
    InvalidData,
    NotPermitted,
    TriggerNotAllowed,
    UnknownCase,
    UnknownTrigger,
    UnknownWorkflow,
    VersionConflict,
)
from engine.store.tables import cases, history, idempotency
from tests.support.farmland import (
    CASE_DATA,
    LIFECYCLE,
    REPORTER,
    UNIT,
    WORKFLOW_FILE,
    case_service,
    farmland_service,
)

MINIMAL = WORKFLOW_FILE.parent.parent / "tests" / "data" / "valid" / "minimal.yaml"


@pytest.fixture
def service(engine: Engine, clock: FixedClock) -> CaseService:
    return farmland_service(engine, clock)


def open_case(service: CaseService, **data: Any) -> str:
    return service.create_case("farmland_violation", UNIT, REPORTER, {**CASE_DATA, **data}).id


def snapshot(engine: Engine) -> tuple[list[Any], list[Any], list[Any]]:
    with engine.connect() as conn:
        return (
            [tuple(r) for r in conn.execute(sa.select(cases).order_by(cases.c.id))],
            [
                tuple(r)
                for r in conn.execute(sa.select(history).order_by(history.c.case_id, history.c.seq))
            ],
            [tuple(r) for r in conn.execute(sa.select(idempotency))],
        )


def test_full_lifecycle(service: CaseService, clock: FixedClock) -> None:
    case_id = open_case(service)
    created = service.get_case(case_id)
    assert (created.state, created.revision, created.version) == ("discovered", 1, 1)
    assert created.data["complex"] is False  # defaults filled in
    for trigger, actor, payload, reached in LIFECYCLE:
        clock.advance(timedelta(hours=1))
        view = service.submit_event(case_id, trigger, actor, payload)
        assert view.state == reached, trigger
    final = service.get_case(case_id)
    assert final.state == "closed" and not final.open
    assert final.closed_at == clock.now()
    assert final.data["case_no"] == "大规资立〔2026〕1号"
    assert final.data["rectify_by"] == "2026-10-30"
    entries = service.history(case_id)
    assert [e.trigger for e in entries] == ["create"] + [step[0] for step in LIFECYCLE]
    assert [e.to_state for e in entries][-1] == "closed"
    assert entries[3].actor == "p-bq-leader"
    assert service.verify(case_id).ok


class TestRejections:
    """Every refusal names its reason and leaves the database exactly as it was."""

    def refused(
        self, service: CaseService, error: type[EventRejected], action: Callable[[], Any]
    ) -> EventRejected:
        before = snapshot(service.engine)
        with pytest.raises(error) as info:
            action()
        assert snapshot(service.engine) == before
        return info.value

    def test_unknown_case(self, service: CaseService) -> None:
        before = snapshot(service.engine)
        with pytest.raises(UnknownCase, match="C000"):
            service.submit_event("C000", "stop", REPORTER, {"stop_note": "x"})
        assert snapshot(service.engine) == before

    def test_unknown_trigger_lists_the_allowed_ones(self, service: CaseService) -> None:
        case_id = open_case(service)
        err = self.refused(
            service, UnknownTrigger, lambda: service.submit_event(case_id, "stopp", REPORTER, {})
        )
        assert err.details["allowed"] == ["stop", "stop_fail"]

    def test_trigger_not_allowed_in_state(self, service: CaseService) -> None:
        case_id = open_case(service)
        err = self.refused(
            service,
            TriggerNotAllowed,
            lambda: service.submit_event(case_id, "accept", "p-bq-office", {}),
        )
        assert "not allowed in state 'discovered'" in str(err)

    def test_unknown_actor(self, service: CaseService) -> None:
        case_id = open_case(service)
        err = self.refused(
            service, NotPermitted, lambda: service.submit_event(case_id, "stop", "p-nobody", {})
        )
        assert "unknown actor" in str(err)

    def test_actor_without_the_role(self, service: CaseService) -> None:
        case_id = open_case(service)
        # The district's planning bureau holds no village or group role here.
        err = self.refused(
            service,
            NotPermitted,
            lambda: service.submit_event(case_id, "stop", "p-ddk-planning", {"stop_note": "x"}),
        )
        assert "village.member" in err.details["roles"]

    def test_actor_of_another_village(self, service: CaseService) -> None:
        case_id = open_case(service)
        self.refused(
            service,
            NotPermitted,
            lambda: service.submit_event(case_id, "stop", "p-bq-sl-1-member", {"stop_note": "x"}),
        )

    def test_missing_required_payload(self, service: CaseService) -> None:
        case_id = open_case(service)
        err = self.refused(
            service, InvalidData, lambda: service.submit_event(case_id, "stop", REPORTER, {})
        )
        assert err.details["fields"] == {"stop_note": "is required"}

    @pytest.mark.parametrize(
        ("payload", "field", "fragment"),
        [
            ({"stop_note": 12}, "stop_note", "expected text"),
            ({"stop_note": "x", "area_m2": -1}, "area_m2", "below the minimum 0"),
            ({"stop_note": "x", "area_m2": "big"}, "area_m2", "expected a number"),
            ({"stop_note": "x", "land_type": "草地"}, "land_type", "is not one of"),
            ({"stop_note": "x", "colour": "red"}, "colour", "unknown field"),
        ],
    )
    def test_bad_payload(
        self, service: CaseService, payload: dict[str, Any], field: str, fragment: str
    ) -> None:
        case_id = open_case(service)
        err = self.refused(
            service, InvalidData, lambda: service.submit_event(case_id, "stop", REPORTER, payload)
        )
        assert fragment in err.details["fields"][field]

    def test_guard_false(self, service: CaseService, engine: Engine) -> None:
        service.catalog.register_file(MINIMAL)
        case_id = service.create_case(
            "mini", UNIT, REPORTER, {"address": "x", "land_type": "其他"}
        ).id
        service.submit_event(case_id, "stop", "p-bq-xh-member1", {"note": "已制止"})
        err = self.refused(
            service, GuardFailed, lambda: service.submit_event(case_id, "close", "p-bq-leader", {})
        )
        assert err.details["guards"] == ["area_m2 < 100", "area_m2 >= 100"]

    def test_version_conflict(self, service: CaseService) -> None:
        case_id = open_case(service)
        err = self.refused(
            service,
            VersionConflict,
            lambda: service.submit_event(case_id, "stop", REPORTER, {"stop_note": "x"}, revision=5),
        )
        assert (err.details["expected"], err.details["actual"]) == (5, 1)

    def test_bad_case_data_on_create(self, service: CaseService) -> None:
        err = self.refused(
            service,
            InvalidData,
            lambda: service.create_case("farmland_violation", UNIT, REPORTER, {"address": "x"}),
        )
        assert set(err.details["fields"]) == {"land_type", "source"}

    def test_unknown_workflow(self, service: CaseService) -> None:
        with pytest.raises(UnknownWorkflow):
            service.create_case("nope", UNIT, REPORTER, CASE_DATA)

    def test_the_system_actor_is_reserved(self, service: CaseService) -> None:
        case_id = open_case(service)
        self.refused(
            service,
            NotPermitted,
            lambda: service.submit_event(case_id, "auto_report", "system", {}),
        )


class TestIdempotency:
    def test_repeated_event_applies_once(self, service: CaseService) -> None:
        case_id = open_case(service)
        first = service.submit_event(case_id, "stop", REPORTER, {"stop_note": "x"}, key="k1")
        again = service.submit_event(case_id, "stop", REPORTER, {"stop_note": "x"}, key="k1")
        assert again.as_dict() == first.as_dict()
        assert len(service.history(case_id)) == 2

    def test_repeated_create_opens_one_case(self, service: CaseService) -> None:
        a = service.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA, key="new-1")
        b = service.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA, key="new-1")
        assert a.id == b.id
        assert len(service.list_cases()) == 1

    def test_same_key_different_request_is_refused(self, service: CaseService) -> None:
        case_id = open_case(service)
        service.submit_event(case_id, "stop", REPORTER, {"stop_note": "x"}, key="k1")
        before = snapshot(service.engine)
        with pytest.raises(IdempotencyMismatch):
            service.submit_event(case_id, "stop", REPORTER, {"stop_note": "y"}, key="k1")
        assert snapshot(service.engine) == before

    def test_keys_belong_to_their_actor(self, service: CaseService) -> None:
        a = service.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA, key="same")
        b = service.create_case("farmland_violation", UNIT, "p-bq-xh-leader", CASE_DATA, key="same")
        assert a.id != b.id


class TestRaces:
    def race(self, service: CaseService, attempts: list[Callable[[], Any]]) -> list[Any]:
        barrier = threading.Barrier(len(attempts))
        results: list[Any] = [None] * len(attempts)

        def run(i: int) -> None:
            barrier.wait()
            try:
                results[i] = attempts[i]()
            except EventRejected as exc:
                results[i] = exc

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(attempts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    def test_two_writers_one_wins_the_other_is_rechecked(
        self, service: CaseService, database: Any, clock: FixedClock
    ) -> None:
        case_id = open_case(service)
        other = case_service(database.new_engine(), clock)
        results = self.race(
            service,
            [
                lambda: service.submit_event(case_id, "stop", REPORTER, {"stop_note": "a"}),
                lambda: other.submit_event(case_id, "stop_fail", REPORTER, {"stop_note": "b"}),
            ],
        )
        wins = [r for r in results if not isinstance(r, Exception)]
        losses = [r for r in results if isinstance(r, Exception)]
        assert len(wins) == 1 and len(losses) == 1
        assert isinstance(losses[0], TriggerNotAllowed)  # re-checked against the new state
        final = service.get_case(case_id)
        assert final.revision == 2 and final.state == wins[0].state
        assert service.verify(case_id).ok

    def test_revision_race_has_one_winner(
        self, service: CaseService, database: Any, clock: FixedClock
    ) -> None:
        case_id = open_case(service)
        others = [case_service(database.new_engine(), clock) for _ in range(4)]
        results = self.race(
            service,
            [
                partial(
                    s.submit_event,
                    case_id,
                    "stop",
                    REPORTER,
                    {"stop_note": "x"},
                    revision=1,
                )
                for s in others
            ],
        )
        assert sum(not isinstance(r, Exception) for r in results) == 1
        assert all(isinstance(r, VersionConflict) for r in results if isinstance(r, Exception))
        assert len(service.history(case_id)) == 2


class TestHistory:
    def tamper(self, engine: Engine, statement: str, **params: Any) -> None:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params)

    def walked(self, service: CaseService) -> str:
        case_id = open_case(service)
        for trigger, actor, payload, _ in LIFECYCLE[:3]:
            service.submit_event(case_id, trigger, actor, payload)
        assert service.verify(case_id).ok
        return case_id

    def test_an_edited_row_is_detected(self, service: CaseService) -> None:
        case_id = self.walked(service)
        self.tamper(
            service.engine,
            "UPDATE history SET actor = 'p-bq-leader' WHERE case_id = :c AND seq = 2",
            c=case_id,
        )
        report = service.verify(case_id)
        assert not report.ok and report.first_bad_seq == 2

    def test_a_deleted_row_is_detected(self, service: CaseService) -> None:
        case_id = self.walked(service)
        self.tamper(service.engine, "DELETE FROM history WHERE case_id = :c AND seq = 2", c=case_id)
        report = service.verify(case_id)
        assert not report.ok and report.first_bad_seq == 2

    def test_a_removed_tail_is_detected(self, service: CaseService) -> None:
        case_id = self.walked(service)
        self.tamper(service.engine, "DELETE FROM history WHERE case_id = :c AND seq = 4", c=case_id)
        report = service.verify(case_id)
        assert not report.ok and "revision 4" in report.reason


class TestReading:
    def test_filters(self, service: CaseService) -> None:
        a = open_case(service)
        b = service.create_case(
            "farmland_violation", "ddk-bq-sl-1", "p-bq-sl-1-member", CASE_DATA
        ).id
        service.submit_event(a, "stop", REPORTER, {"stop_note": "x"})

        def ids(**kw: Any) -> set[str]:
            return {c.id for c in service.list_cases(CaseFilter(**kw))}

        assert ids() == {a, b}
        assert ids(state="stopped") == {a}
        assert ids(unit="ddk-bq-xh") == {a}
        assert ids(unit="ddk-bq") == {a, b}
        assert ids(unit="ddk-js") == set()  # another town
        assert ids(workflow="farmland_violation", open=True) == {a, b}
        assert ids(open=False) == set()

    def test_cursor_pages(self, service: CaseService) -> None:
        made = sorted(open_case(service) for _ in range(5))
        first = service.list_cases(CaseFilter(limit=2))
        rest = service.list_cases(CaseFilter(limit=10, after=first[-1].id))
        assert [c.id for c in first + rest] == made


class TestVersions:
    def test_a_changed_file_is_a_new_version_and_cases_stay_pinned(
        self, service: CaseService
    ) -> None:
        old_case = open_case(service)
        text = WORKFLOW_FILE.read_text(encoding="utf-8").replace(
            "title: 违法占用耕地案件处置", "title: 违法占用耕地案件处置（修订）", 1
        )
        assert text != WORKFLOW_FILE.read_text(encoding="utf-8")
        again = service.catalog.register_file(WORKFLOW_FILE)
        assert (again.version, again.created) == (1, False)
        new = service.catalog.register_text(text, "edited.yaml")
        assert (new.version, new.created) == (2, True)
        new_case = open_case(service)
        assert service.get_case(old_case).version == 1
        assert service.get_case(new_case).version == 2
        # the old case still runs on v1
        assert service.submit_event(old_case, "stop", REPORTER, {"stop_note": "x"}).version == 1
        counts = {(v.version, v.open_cases) for v in service.catalog.versions()}
        assert counts == {(1, 1), (2, 1)}


def test_a_rewritten_tail_is_detected_by_the_head_hash(service: CaseService) -> None:
    """Rewriting the last row *and* its hash consistently still breaks the case's head."""
    from engine.cases.history import hashed_fields, row_hash

    case_id = open_case(service)
    service.submit_event(case_id, "stop", REPORTER, {"stop_note": "x"})
    with service.engine.begin() as conn:
        row = dict(
            conn.execute(sa.select(history).where(history.c.case_id == case_id, history.c.seq == 2))
            .mappings()
            .one()
        )
        row["actor"] = "p-bq-leader"
        forged = row_hash(row["prev_hash"], hashed_fields(row))
        conn.execute(
            sa.update(history)
            .where(history.c.case_id == case_id, history.c.seq == 2)
            .values(actor="p-bq-leader", hash=forged)
        )
    report = service.verify(case_id)
    assert not report.ok and "newest row" in report.reason
