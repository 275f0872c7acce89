"""SQLite writers of one process queue on a lock that wakes the next at once
(engine/store/sqlite_writers.py), not in SQLite's sleeping busy handler."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.errors import StorageUnavailable
from engine.store import transaction
from engine.store.db import make_engine
from engine.store.sqlite_writers import queued_file

NEVER_WITHIN = 0.5  # seconds to watch for something that must not happen


@pytest.fixture
def file_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}", busy_timeout_ms=5_000)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    yield engine
    engine.dispose()


def _begins(engine: sa.Engine) -> dict[int, threading.Event]:
    """An event per thread, set when that thread's connection sends ``BEGIN IMMEDIATE``."""
    seen: dict[int, threading.Event] = {}

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement == "BEGIN IMMEDIATE":
            seen.setdefault(threading.get_ident(), threading.Event()).set()

    return seen


def test_a_second_writer_waits_for_the_first_to_end_before_it_begins(
    file_engine: sa.Engine,
) -> None:
    began = _begins(file_engine)
    second_began = threading.Event()
    second_done = threading.Event()
    order: list[str] = []

    def second_writer() -> None:
        began[threading.get_ident()] = second_began
        with transaction(file_engine) as conn:
            order.append("second begins")
            conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        second_done.set()

    with transaction(file_engine) as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        writer = threading.Thread(target=second_writer)
        writer.start()
        # Before: the second writer sent BEGIN IMMEDIATE at once and slept in SQLite's
        # busy handler.  Now it waits in this process's queue and sends nothing.
        assert not second_began.wait(NEVER_WITHIN)
        order.append("first commits")
    assert second_done.wait(5)
    writer.join()
    assert order == ["first commits", "second begins"]
    with file_engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT n FROM t ORDER BY n").scalars().all() == [1, 2]


@pytest.mark.parametrize("ending", ["commit", "rollback", "error", "close"])
def test_every_end_of_a_transaction_lets_the_next_writer_in(
    file_engine: sa.Engine, ending: str
) -> None:
    with file_engine.connect() as conn:
        conn.begin()
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        if ending == "commit":
            conn.commit()
        elif ending == "rollback":
            conn.rollback()
        elif ending == "error":
            with pytest.raises(sa.exc.OperationalError):
                conn.exec_driver_sql("INSERT INTO no_such_table VALUES (1)")
            conn.rollback()
        else:
            conn.invalidate()  # the pool closes the raw connection with its transaction
    other = threading.Thread(target=_insert, args=(file_engine, 2))
    other.start()
    other.join(5)
    assert not other.is_alive()
    with file_engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT n FROM t ORDER BY n").scalars().all()
    assert rows == ([1, 2] if ending == "commit" else [2])


def _insert(engine: sa.Engine, n: int) -> None:
    with transaction(engine) as conn:
        conn.exec_driver_sql(f"INSERT INTO t VALUES ({n})")


def test_a_writer_nested_in_its_own_thread_meets_sqlites_lock_not_a_deadlock(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'n.db'}", busy_timeout_ms=200)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    with transaction(engine) as outer:
        outer.exec_driver_sql("INSERT INTO t VALUES (1)")
        with pytest.raises(StorageUnavailable, match="locked"):
            _insert(engine, 2)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT n FROM t").scalars().all() == [1]
    engine.dispose()


def test_a_writer_of_another_process_still_queues_on_sqlites_lock(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    engine = make_engine(f"sqlite:///{path}", busy_timeout_ms=200)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    outsider = sqlite3.connect(path, isolation_level=None)  # as another process would
    outsider.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StorageUnavailable, match="locked"):
            _insert(engine, 1)
    finally:
        outsider.rollback()
        outsider.close()
    _insert(engine, 2)  # the queue was given back although its writer failed
    engine.dispose()


def test_in_memory_and_uri_databases_are_left_alone() -> None:
    assert queued_file("/var/lib/gengbao/g.db")
    assert not queued_file(":memory:")
    assert not queued_file("file:g.db?mode=memory")
    assert not queued_file("")
