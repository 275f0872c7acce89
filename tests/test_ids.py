"""Case and patrol ids: the day and its sequence number, never a collision."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from engine.cases.ids import next_id
from engine.clock import FixedClock
from tests.support.databases import Database
from tests.support.farmland import (
    CASE_DATA,
    REPORTER,
    UNIT,
    case_service,
    farmland_service,
)

START = datetime(2026, 9, 18, 2, 0, tzinfo=UTC)


def test_case_ids_count_up_within_a_day_and_restart_the_next(engine: Engine) -> None:
    clock = FixedClock(START)
    service = farmland_service(engine, clock)
    first = [service.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA).id for _ in "abc"]
    clock.advance(timedelta(days=1))
    nxt = service.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA).id
    assert first == ["C20260918-0001", "C20260918-0002", "C20260918-0003"]
    assert nxt == "C20260919-0001"


def test_a_refused_creation_gives_its_number_back(engine: Engine) -> None:
    service = farmland_service(engine, FixedClock(START))
    ok = service.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA).id
    with engine.begin() as conn:
        drawn = next_id(conn, "C", START)
        conn.rollback()
    again = service.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA).id
    assert (ok, drawn, again) == ("C20260918-0001", "C20260918-0002", "C20260918-0002")


def test_many_concurrent_creations_never_collide(database: Database, engine: Engine) -> None:
    """Four threads, each with its own engine, creating cases on the same day at once."""
    clock = FixedClock(START)
    farmland_service(engine, clock)
    made: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def create(n: int) -> None:
        service = case_service(database.new_engine(busy_timeout_ms=30_000), clock)
        barrier.wait()
        for _ in range(n):
            try:
                made.append(service.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA).id)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=create, args=(25,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(made) == [f"C20260918-{n:04d}" for n in range(1, 101)]
