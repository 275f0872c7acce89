"""One pooled connection for a whole unit of work (an HTTP request): :func:`one_checkout`.

Inside ``with one_checkout(engine):`` every :func:`~engine.store.connection` and
:func:`~engine.store.transaction` on *engine*'s pool (``read_only(engine)``
included) uses the same connection, checked out from the pool at its first use
and returned when the block ends.  An HTTP request thus checks out once for
its token lookup, its reads and its event, instead of once for each.

The connection is held in a :class:`~contextvars.ContextVar`: Starlette copies
the request's context into the thread that runs a dependency or a route, so
they all find it, and no other request ever does.

Each use still starts and ends its own transaction, exactly as a fresh
connection would:

- a :func:`connection` block ends with a rollback of whatever it began (a
  read's transaction), so no read snapshot outlives it.  On SQLite this
  matters: a deferred ``BEGIN`` left open would make the next ``BEGIN
  IMMEDIATE`` on the same connection fail with ``SQLITE_BUSY_SNAPSHOT``
  once another writer committed in between;
- a :func:`transaction` block is ``BEGIN`` (``BEGIN IMMEDIATE`` on SQLite)
  … ``COMMIT``, or ``ROLLBACK`` on an error.

A block opened while the shared connection is in use by another block
(a read nested in a transaction, say) gets a connection of its own from the
pool, as without :func:`one_checkout`: a nested block never sees the outer
block's uncommitted writes nor joins its transaction.  After any error inside
a block the shared connection is returned to the pool and the next block checks
out a fresh one, so a broken or invalidated connection is never reused.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from sqlalchemy import Connection, Engine, event

__all__ = [
    "READ_ONLY_OPTION",
    "SharedConnection",
    "begin_unit",
    "count_checkouts",
    "end_unit",
    "one_checkout",
    "process_checkouts",
    "shared_for",
]

READ_ONLY_OPTION = "gengbao_read_only"
"""The execution option of :func:`engine.store.db.read_only`: SQLite begins deferred."""


class SharedConnection:
    """The connection of one unit of work, checked out at its first use."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine.engine  # the plain engine (no read-only options)
        self.checkouts = 0  # pool checkouts made in this unit of work's context, shared or not
        self._connection: Connection | None = None
        self._busy = False
        self._lock = threading.Lock()

    def serves(self, engine: Engine) -> bool:
        """Whether *engine* draws from this connection's pool with no options but read-only."""
        if engine.pool is not self.engine.pool:
            return False
        return set(engine.get_execution_options()) <= {READ_ONLY_OPTION}

    @property
    def checked_out(self) -> bool:
        return self._connection is not None

    @contextmanager
    def borrow(self, engine: Engine) -> Iterator[Connection | None]:
        """The shared connection, set up for *engine*'s options; ``None`` if it is in use."""
        with self._lock:
            if self._busy:
                free = False
            else:
                free = self._busy = True
        if not free:
            yield None
            return
        try:
            if self._connection is None:
                self._connection = self.engine.connect()
            conn = self._connection
            read_only = bool(engine.get_execution_options().get(READ_ONLY_OPTION, False))
            conn.execution_options(**{READ_ONLY_OPTION: read_only})  # in place
            try:
                yield conn
                if conn.in_transaction():  # a read's autobegun transaction: end it now
                    conn.rollback()
            except BaseException:
                self._drop()
                raise
        finally:
            with self._lock:
                self._busy = False

    def close(self) -> None:
        """Return the connection to the pool (at the end of the unit of work)."""
        self._drop()

    def _drop(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            conn.close()


_current: ContextVar[SharedConnection | None] = ContextVar("gengbao_checkout", default=None)


def shared_for(engine: Engine) -> SharedConnection | None:
    """The unit of work's shared connection if *engine* may use it, else ``None``."""
    shared = _current.get()
    if shared is None or not shared.serves(engine):
        return None
    return shared


_process_checkouts = 0


def count_checkouts(engine: Engine) -> None:
    """Count *engine*'s pool checkouts: for the process (:func:`process_checkouts`) and for
    the unit of work whose context makes them (:attr:`SharedConnection.checkouts`)."""

    def _on_checkout(_dbapi: Any, _record: Any, _proxy: Any) -> None:
        global _process_checkouts
        _process_checkouts += 1  # a statistic: a lost increment under a race is harmless
        shared = _current.get()
        if shared is not None:
            shared.checkouts += 1

    event.listen(engine, "checkout", _on_checkout)


def process_checkouts() -> int:
    """Pool checkouts in this process since it started (engines of :func:`make_engine`)."""
    return _process_checkouts


def begin_unit(engine: Engine) -> tuple[SharedConnection, Token[SharedConnection | None]]:
    """Start a unit of work in the current context; end it with :func:`end_unit`, then
    :meth:`SharedConnection.close` (in a thread, from an event loop)."""
    shared = SharedConnection(engine)
    return shared, _current.set(shared)


def end_unit(token: Token[SharedConnection | None]) -> None:
    _current.reset(token)


@contextmanager
def one_checkout(engine: Engine) -> Iterator[SharedConnection]:
    """Within the block, connections and transactions on *engine*'s pool share one checkout."""
    shared, token = begin_unit(engine)
    try:
        yield shared
    finally:
        end_unit(token)
        shared.close()
