"""SQLAlchemy's exceptions mapped onto the :class:`~engine.errors.StorageError` branch.

The httpx ``map_httpcore_exceptions`` pattern: a service opens its connection or
transaction through :func:`transaction` / :func:`connection` (or wraps other
database work in :func:`map_storage_errors`), and whatever SQLAlchemy or the
driver raises inside leaves as one of

==========================  ======================================================
:class:`StorageUnavailable`  ``OperationalError`` (SQLite: locked or busy),
                             ``InterfaceError``, ``DisconnectionError``, a pool
                             ``TimeoutError``, a connection invalidated under us
                             — the database cannot be used now: try again (503)
:class:`StorageConflict`     ``IntegrityError`` — a uniqueness or reference rule
                             refused a write; the same request fails again (409)
:class:`StorageError`        anything else (``ProgrammingError``, ``DataError``,
                             ``NoResultFound``, SQLite's "no such table", …): a
                             bug or a schema mismatch, not retryable (500)
==========================  ======================================================

with the original exception as ``__cause__`` (``raise … from exc``).
Engine errors raised inside (``UnknownCase``, ``RequestInProgress``…) pass
through untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Connection, Engine, exc
from sqlalchemy.engine import URL, make_url

from engine.errors import StorageConflict, StorageError, StorageUnavailable
from engine.store.checkout import shared_for

T = TypeVar("T")

__all__ = [
    "DRIVER_ERROR",
    "connection",
    "map_storage_errors",
    "masked_url",
    "read_retrying",
    "storage_error_for",
    "transaction",
]

DRIVER_ERROR: type[exc.SQLAlchemyError] = exc.SQLAlchemyError
"""What the storage layer raises before :func:`storage_error_for` maps it: an edge
registers a last-resort handler for it without importing SQLAlchemy itself."""

_UNAVAILABLE: tuple[type[exc.SQLAlchemyError], ...] = (
    exc.InterfaceError,
    exc.DisconnectionError,
    exc.TimeoutError,  # the connection pool had no connection to give in time
)
# SQLite reports both "the database is busy" and "no such table" as OperationalError;
# only the first kind is worth a retry.
_SQLITE_TRANSIENT = ("locked", "busy", "disk i/o error")


def masked_url(url: str | URL) -> str:
    """The URL as text with its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return "<invalid URL>"


def _first_line(error: exc.SQLAlchemyError) -> str:
    reason = getattr(error, "orig", None) or error
    text = str(reason).strip()
    return text.splitlines()[0] if text else repr(reason)


def _transient(error: exc.SQLAlchemyError) -> bool:
    if isinstance(error, _UNAVAILABLE):
        return True
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, exc.OperationalError):
        orig = error.orig
        if type(orig).__module__.startswith("sqlite3"):
            return any(word in str(orig).lower() for word in _SQLITE_TRANSIENT)
        return True  # PostgreSQL: connection lost, lock or statement timeout, deadlock
    return False


def storage_error_for(
    error: exc.SQLAlchemyError, url: str | URL | None = None, doing: str = "use"
) -> StorageError:
    """The engine error for *error* (see the module docstring); the caller raises it
    ``from`` *error*."""
    shown = masked_url(url) if url is not None else ""
    reason = _first_line(error)
    where = f"database {shown}" if shown else "the database"
    message = f"cannot {doing} {where}: {reason}"
    if isinstance(error, exc.IntegrityError):
        return StorageConflict(message, url=shown, reason=reason)
    if _transient(error):
        return StorageUnavailable(message, url=shown, reason=reason)
    return StorageError(message, url=shown, reason=reason)


@contextmanager
def map_storage_errors(engine: Engine | URL | str, doing: str = "use") -> Iterator[None]:
    """Translate SQLAlchemy and driver errors raised inside into the StorageError branch."""
    try:
        yield
    except exc.SQLAlchemyError as error:
        url = engine.url if isinstance(engine, Engine) else engine
        raise storage_error_for(error, url, doing) from error


@contextmanager
def transaction(engine: Engine, doing: str = "use") -> Iterator[Connection]:
    """``engine.begin()`` with its errors mapped, the commit's included.

    Inside :func:`~engine.store.checkout.one_checkout` (an HTTP request) the
    transaction runs on the request's one connection when it is free.
    """
    shared = shared_for(engine)
    if shared is None:
        with map_storage_errors(engine, doing), engine.begin() as conn:
            yield conn
        return
    with map_storage_errors(engine, doing), shared.borrow(engine) as borrowed:
        if borrowed is None:
            with engine.begin() as conn:
                yield conn
        else:
            with borrowed.begin():
                yield borrowed


@contextmanager
def connection(engine: Engine, doing: str = "read from") -> Iterator[Connection]:
    """``engine.connect()`` with its errors mapped (pass ``read_only(engine)`` for a
    reader that must not queue behind SQLite's writer).

    Inside :func:`~engine.store.checkout.one_checkout` the request's one connection
    is used when it is free; whatever the block began is rolled back at its end.
    """
    shared = shared_for(engine)
    if shared is None:
        with map_storage_errors(engine, doing), engine.connect() as conn:
            yield conn
        return
    with map_storage_errors(engine, doing), shared.borrow(engine) as borrowed:
        if borrowed is None:
            with engine.connect() as conn:
                yield conn
        else:
            yield borrowed


def read_retrying(engine: Engine, work: Callable[[Connection], T], doing: str = "read from") -> T:
    """``work(conn)`` in :func:`connection`, once more on a fresh connection if the first
    one turns out dead.

    There is no ping before each checkout (``pool_pre_ping``): the first statement of a
    unit of work finds a connection the server closed (a restart, ``pg_terminate_backend``,
    an idle timeout).  SQLAlchemy then invalidates that connection and every older one in
    the pool, and the retry runs on a new connection.  Only for reads (*work* must not
    write): the HTTP API's token lookup, the first statement of every request.
    """
    try:
        with connection(engine, doing) as conn:
            return work(conn)
    except StorageUnavailable as error:
        cause = error.__cause__
        if not (isinstance(cause, exc.DBAPIError) and cause.connection_invalidated):
            raise
    with connection(engine, doing) as conn:
        return work(conn)
