"""Outcomes of sends finishing together share one commit (notifications/outcomes.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.store import transaction
from engine.store.db import make_engine
from notifications.outcomes import GroupCommit

WAIT = 10.0  # seconds: a bound on waiting for other threads, never reached when all is well


@pytest.fixture
def table_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'o.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE outcomes (item TEXT NOT NULL CHECK (item <> 'bad'))")
    yield engine
    engine.dispose()


def _written(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.exec_driver_sql("SELECT item FROM outcomes").scalars())


def _until(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.001)


def test_outcomes_that_arrive_during_a_write_share_the_next_commit(
    table_engine: sa.Engine,
) -> None:
    first_writing, release = threading.Event(), threading.Event()
    batches: list[list[str]] = []

    def write(conn: sa.Connection, items: Sequence[str]) -> None:
        batches.append(list(items))
        if items == ["a"]:
            first_writing.set()
            assert release.wait(WAIT)
        for item in items:
            conn.execute(sa.text("INSERT INTO outcomes VALUES (:i)"), {"i": item})

    group = GroupCommit(lambda: transaction(table_engine), write)
    returned: list[str] = []

    def record(item: str) -> None:
        group.record(item)
        returned.append(item)

    first = threading.Thread(target=record, args=("a",))
    first.start()
    assert first_writing.wait(WAIT)
    others = [threading.Thread(target=record, args=(item,)) for item in "bcde"]
    for thread in others:
        thread.start()
    _until(lambda: group.waiting == 4, "four outcomes to queue behind the first write")
    assert returned == []  # nobody returns before its outcome is committed
    release.set()
    for thread in (first, *others):
        thread.join(WAIT)
    assert len(batches) == 2 and batches[0] == ["a"]  # the four queued in any order
    assert sorted(batches[1]) == list("bcde")
    assert group.commits == 2
    assert sorted(returned) == list("abcde")
    assert _written(table_engine) == list("abcde")


def test_an_outcome_that_cannot_be_written_fails_only_its_own_caller(
    table_engine: sa.Engine,
) -> None:
    hold, release = threading.Event(), threading.Event()

    def write(conn: sa.Connection, items: Sequence[str]) -> None:
        if items == ["first"]:
            hold.set()
            assert release.wait(WAIT)
        for item in items:
            conn.execute(sa.text("INSERT INTO outcomes VALUES (:i)"), {"i": item})

    group = GroupCommit(lambda: transaction(table_engine), write)
    errors: dict[str, BaseException] = {}

    def record(item: str) -> None:
        try:
            group.record(item)
        except Exception as error:
            errors[item] = error

    first = threading.Thread(target=record, args=("first",))
    first.start()
    assert hold.wait(WAIT)
    others = [threading.Thread(target=record, args=(item,)) for item in ("ok1", "bad", "ok2")]
    for thread in others:
        thread.start()
    _until(lambda: group.waiting == 3, "three outcomes to queue")
    release.set()
    for thread in (first, *others):
        thread.join(WAIT)
    assert list(errors) == ["bad"] and "CHECK constraint" in str(errors["bad"])
    assert _written(table_engine) == ["first", "ok1", "ok2"]


def test_one_caller_alone_commits_its_outcome_at_once(table_engine: sa.Engine) -> None:
    def write(conn: sa.Connection, items: Sequence[str]) -> None:
        for item in items:
            conn.execute(sa.text("INSERT INTO outcomes VALUES (:i)"), {"i": item})

    group = GroupCommit(lambda: transaction(table_engine), write)
    group.record("x")
    assert _written(table_engine) == ["x"]
    with pytest.raises(Exception, match="CHECK constraint"):
        group.record("bad")
    group.record("y")
    assert _written(table_engine) == ["x", "y"] and group.commits == 2
