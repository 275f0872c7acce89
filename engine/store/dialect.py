"""SQLite and PostgreSQL differences, in one place (see :mod:`engine.store`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from engine.errors import LockTimedOut

__all__ = ["dialect_insert", "for_update", "insert_or_ignore", "lock_wait_limit", "skip_locked"]

Bind = Connection | Engine
S = TypeVar("S", bound=sa.Select[Any])

_PG_LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout expired


def _locks_rows(bind: Bind) -> bool:
    return bind.dialect.name == "postgresql"


def for_update(stmt: S, bind: Bind, *, of: Any = None, key_share: bool = False) -> S:
    """*stmt* locking the rows it reads (``FOR UPDATE [OF …]``) on PostgreSQL; on
    SQLite unchanged (the writer already holds the database).  *key_share*: ``FOR NO
    KEY UPDATE``, the lock an UPDATE that changes no key takes, which lets other
    transactions insert rows that reference the locked ones meanwhile."""
    if not _locks_rows(bind):
        return stmt
    return stmt.with_for_update(of=of, key_share=key_share)


def skip_locked(stmt: S, bind: Bind) -> S:
    """*stmt* locking the rows it reads and skipping those another transaction holds
    (``FOR UPDATE SKIP LOCKED``) on PostgreSQL; on SQLite unchanged (one writer)."""
    return stmt.with_for_update(skip_locked=True) if _locks_rows(bind) else stmt


def dialect_insert(table: sa.Table, bind: Bind | str) -> Any:
    """The dialect's own INSERT into *table*, with ``on_conflict_do_nothing`` and
    ``on_conflict_do_update`` (both databases spell them ``ON CONFLICT``); *bind* may
    be a dialect's name, for a statement built once per dialect."""
    name = bind if isinstance(bind, str) else bind.dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


def insert_or_ignore(table: sa.Table, bind: Bind | str) -> Any:
    """An INSERT into *table* that does nothing when the row (its key) already exists."""
    return dialect_insert(table, bind).on_conflict_do_nothing()


@contextmanager
def lock_wait_limit(conn: Connection, milliseconds: int) -> Iterator[None]:
    """Inside the block, a lock wait gives up after *milliseconds* and raises
    :class:`~engine.errors.LockTimedOut` (PostgreSQL's ``SET LOCAL lock_timeout``).
    On SQLite writers queue on the database lock instead, so there it does nothing."""
    if not _locks_rows(conn):
        yield
        return
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(milliseconds)}")
    try:
        yield
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == _PG_LOCK_NOT_AVAILABLE:
            raise LockTimedOut(milliseconds) from exc
        raise
    conn.exec_driver_sql("SET LOCAL lock_timeout = DEFAULT")
