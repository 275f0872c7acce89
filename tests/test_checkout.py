"""One pooled connection per unit of work (``engine.store.one_checkout``), and no ping.

On both backends: inside ``one_checkout`` reads and transactions share one
checkout; a read never leaves a snapshot open for the write that follows it
(on SQLite a leftover deferred ``BEGIN`` would make the next ``BEGIN
IMMEDIATE`` fail once another writer committed); a block nested in another
gets a connection of its own; an error returns the shared connection.  On
PostgreSQL: a pooled connection whose backend was terminated is met by the
first statement, and :func:`read_retrying` answers on a fresh one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import delete, insert, select, update

from engine.errors import StorageUnavailable, UnknownCase
from engine.store import (
    connection,
    one_checkout,
    process_checkouts,
    read_retrying,
    transaction,
)
from engine.store.db import READ_ONLY_OPTION, make_engine, read_only
from engine.store.tables import system_values
from notifications.wakeup import install as watch_outbox

AT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def values(engine: sa.Engine) -> Iterator[sa.Engine]:
    with transaction(engine) as conn:
        conn.execute(insert(system_values).values(key="t", value="0", updated_at=AT))
    yield engine
    with transaction(engine) as conn:
        conn.execute(delete(system_values).where(system_values.c.key == "t"))


def _read(conn: sa.Connection) -> str:
    value: str = conn.execute(
        select(system_values.c.value).where(system_values.c.key == "t")
    ).scalar_one()
    return value


def _write(conn: sa.Connection, value: str) -> None:
    conn.execute(update(system_values).where(system_values.c.key == "t").values(value=value))


def _commit(engine: sa.Engine, value: str) -> None:
    with transaction(engine) as conn:
        _write(conn, value)


def _elsewhere(work: Callable[[], None]) -> None:
    """Run *work* in a new thread (a fresh context: outside this unit of work)."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]


def test_reads_and_a_transaction_share_one_checkout(values: sa.Engine) -> None:
    engine = values
    before = process_checkouts()
    with one_checkout(engine) as shared:
        with connection(read_only(engine)) as conn:
            first = conn
            assert _read(conn) == "0"
        with transaction(engine) as conn:
            assert conn is first
            _write(conn, "1")
        with connection(read_only(engine)) as conn:
            assert conn is first
            assert conn.get_execution_options()[READ_ONLY_OPTION] is True  # SQLite: BEGIN
            assert _read(conn) == "1"
        with transaction(engine) as conn:
            assert conn.get_execution_options()[READ_ONLY_OPTION] is False  # BEGIN IMMEDIATE
        assert shared.checkouts == 1
    assert process_checkouts() - before == 1
    with connection(engine) as conn:  # committed, seen from outside
        assert _read(conn) == "1"


def test_a_read_holds_no_snapshot_for_the_write_that_follows(values: sa.Engine) -> None:
    """Another process's commit between the read and the write is seen by the write."""
    engine = values
    with one_checkout(engine) as shared:
        with connection(read_only(engine)) as conn:
            assert _read(conn) == "0"
        _elsewhere(lambda: _commit(engine, "2"))  # another request's writer commits
        with transaction(engine) as conn:
            assert _read(conn) == "2"
            _write(conn, "3")
        assert shared.checkouts == 1
    with connection(engine) as conn:
        assert _read(conn) == "3"


def test_a_block_nested_in_a_transaction_gets_its_own_connection(values: sa.Engine) -> None:
    engine = values
    with one_checkout(engine) as shared:
        with transaction(engine) as outer:
            _write(outer, "4")
            with connection(read_only(engine)) as inner:
                assert inner is not outer
                assert _read(inner) == "0"  # the outer write is not committed yet
        assert shared.checkouts == 2
        with connection(read_only(engine)) as conn:
            assert conn is outer  # the shared one again, free once the nested block ended
            assert _read(conn) == "4"


def test_an_error_returns_the_shared_connection(values: sa.Engine) -> None:
    engine = values
    with one_checkout(engine) as shared:
        with pytest.raises(UnknownCase), transaction(engine) as conn:
            _write(conn, "5")
            raise UnknownCase("C1")
        assert not shared.checked_out
        with connection(read_only(engine)) as conn:
            assert _read(conn) == "0"  # the failed transaction rolled back
        assert shared.checkouts == 2


def _terminate(engine: sa.Engine, pid: int) -> None:
    """``pg_terminate_backend`` from a connection of another engine."""
    admin = make_engine(engine.url)
    try:
        with admin.connect() as conn:
            killed = conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            assert killed.scalar_one() is True
    finally:
        admin.dispose()


def _backend_pid(conn: sa.Connection) -> int:
    pid: int = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    return pid


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_terminated_pooled_connection_fails_once_then_read_retrying_answers(
    values: sa.Engine,
) -> None:
    """With the outbox's transaction listeners on, as in every App."""
    engine = values
    watch_outbox(engine)
    with connection(engine) as conn:  # the pool now holds this connection
        pid = _backend_pid(conn)
    _terminate(engine, pid)
    with pytest.raises(StorageUnavailable), connection(engine) as conn:
        _read(conn)  # no ping before the checkout: the dead connection is met here
    with connection(engine) as conn:  # the pool was invalidated: a new connection
        assert _backend_pid(conn) != pid

    with connection(engine) as conn:
        pid = _backend_pid(conn)
    _terminate(engine, pid)
    with one_checkout(engine) as shared:
        assert read_retrying(read_only(engine), _read) == "0"
        with transaction(engine) as conn:  # the request goes on, on the new connection
            assert _backend_pid(conn) != pid
            _write(conn, "6")
        assert shared.checkouts == 2
    with connection(engine) as conn:
        assert _read(conn) == "6"
