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

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, exc
from sqlalchemy.engine import URL, make_url

from engine.errors import StorageConflict, StorageError, StorageUnavailable

__all__ = [
    "DRIVER_ERROR",
    "connection",
    "map_storage_errors",
    "masked_url",
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
    """``engine.begin()`` with its errors mapped, the commit's included."""
    with map_storage_errors(engine, doing), engine.begin() as conn:
        yield conn


@contextmanager
def connection(engine: Engine, doing: str = "read from") -> Iterator[Connection]:
    """``engine.connect()`` with its errors mapped (pass ``read_only(engine)`` for a
    reader that must not queue behind SQLite's writer)."""
    with map_storage_errors(engine, doing), engine.connect() as conn:
        yield conn
