"""Outcomes of sends finishing together share one commit (notifications/outcomes.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.store import transaction
from engine.store.db import make_engine
from notifications.outcomes import GroupCommit
from tests.support.waiting import wait_for

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


def _insert(conn: sa.Connection, items: Sequence[str]) -> None:
    for item in items:
        conn.execute(sa.text("INSERT INTO outcomes VALUES (:i)"), {"i": item})


class HeldWrites:
    """Inserts the items it is handed, holding the write of *first* alone until released."""

    def __init__(self, first: str) -> None:
        self.first = first
        self.writing, self.release = threading.Event(), threading.Event()
        self.batches: list[list[str]] = []

    def __call__(self, conn: sa.Connection, items: Sequence[str]) -> None:
        self.batches.append(list(items))
        if list(items) == [self.first]:
            self.writing.set()
            assert self.release.wait(WAIT)
        _insert(conn, items)


def test_outcomes_that_arrive_during_a_write_share_the_next_commit(
    table_engine: sa.Engine,
) -> None:
    write = HeldWrites("a")
    group = GroupCommit(lambda: transaction(table_engine), write)
    returned: list[str] = []

    def record(item: str) -> None:
        group.record(item)
        returned.append(item)

    first = threading.Thread(target=record, args=("a",))
    first.start()
    assert write.writing.wait(WAIT)
    others = [threading.Thread(target=record, args=(item,)) for item in "bcde"]
    for thread in others:
        thread.start()
    wait_for("four outcomes to queue behind the first write", lambda: group.waiting == 4, WAIT)
    assert returned == []  # nobody returns before its outcome is committed
    write.release.set()
    for thread in (first, *others):
        thread.join(WAIT)
    assert len(write.batches) == 2 and write.batches[0] == ["a"]  # the four in any order
    assert sorted(write.batches[1]) == list("bcde")
    assert group.commits == 2
    assert sorted(returned) == list("abcde")
    assert _written(table_engine) == list("abcde")


def test_an_outcome_that_cannot_be_written_fails_only_its_own_caller(
    table_engine: sa.Engine,
) -> None:
    write = HeldWrites("first")
    group = GroupCommit(lambda: transaction(table_engine), write)
    errors: dict[str, BaseException] = {}

    def record(item: str) -> None:
        try:
            group.record(item)
        except Exception as error:
            errors[item] = error

    first = threading.Thread(target=record, args=("first",))
    first.start()
    assert write.writing.wait(WAIT)
    others = [threading.Thread(target=record, args=(item,)) for item in ("ok1", "bad", "ok2")]
    for thread in others:
        thread.start()
    wait_for("three outcomes to queue", lambda: group.waiting == 3, WAIT)
    write.release.set()
    for thread in (first, *others):
        thread.join(WAIT)
    assert list(errors) == ["bad"] and "CHECK constraint" in str(errors["bad"])
    assert _written(table_engine) == ["first", "ok1", "ok2"]


def test_one_caller_alone_commits_its_outcome_at_once(table_engine: sa.Engine) -> None:
    group = GroupCommit(lambda: transaction(table_engine), _insert)
    group.record("x")
    assert _written(table_engine) == ["x"]
    with pytest.raises(Exception, match="CHECK constraint"):
        group.record("bad")
    group.record("y")
    assert _written(table_engine) == ["x", "y"] and group.commits == 2
