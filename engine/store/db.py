"""Engines and schema: SQLite (WAL, embedded default) or PostgreSQL (psycopg 3).

SQLite connections run with ``journal_mode=WAL``, ``synchronous=FULL``,
``foreign_keys=ON`` and a busy timeout, and every transaction starts with
``BEGIN IMMEDIATE`` so a writer takes the write lock before it reads (no
lock upgrade deadlock between two read-then-write transactions).  Writers of
one process first queue on a lock of their own, which wakes the next one the
moment the file is free instead of SQLite's sleeping busy handler
(:mod:`engine.store.sqlite_writers`).  Pure
readers may opt out with :func:`read_only`.  This is SQLAlchemy's documented
pysqlite recipe: the driver's own transaction handling is switched off
(``isolation_level = None``) and the ``begin`` event emits ``BEGIN``.

``synchronous=FULL`` makes an acknowledged commit durable: SQLite syncs the
WAL on every commit, so a power loss or an OS crash after the answer cannot
take the transaction back.  ``NORMAL`` (``sqlite_synchronous="normal"``,
settings ``database: {sqlite_synchronous: normal}``) syncs only at
checkpoints: faster, still never corrupt, but the last commits before such a
crash may roll back.  A process crash (``kill -9``) loses nothing under
either.  PostgreSQL is durable by its own settings (``synchronous_commit``,
``fsync``: on by default).  Bookkeeping whose loss is redone safely (the
dispatcher's claims and send outcomes) commits without waiting for the disk
on either database: :func:`lazy_commit`.

PostgreSQL connections are not pinged on checkout (no ``pool_pre_ping``: it
cost a round trip per checkout).  SQLAlchemy's optimistic disconnect handling
instead: a statement that finds its connection closed by the server
invalidates that connection and every older one in the pool, and the first
statement of an HTTP request (the token lookup, a read) runs once more on a
fresh one (:func:`engine.store.read_retrying`).  Each connection is named
``gengbao HOST:PID`` (``application_name``, unless the URL sets one), so
``pg_stat_activity`` shows which process holds it.

The schema is Alembic migrations in ``engine/migrations``; :func:`upgrade`
runs them programmatically (no ``alembic.ini``).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Engine, event, exc
from sqlalchemy.engine import URL, make_url

from engine.errors import StorageError
from engine.store.checkout import READ_ONLY_OPTION, count_checkouts
from engine.store.errors import map_storage_errors, masked_url
from engine.store.sqlite_writers import WriterQueuedConnection, queued_file

if TYPE_CHECKING:  # alembic is imported only when migrating (it is slow to import)
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "READ_ONLY_OPTION",
    "SQLITE_SYNCHRONOUS_LEVELS",
    "alembic_config",
    "ensure_schema",
    "lazy_commit",
    "make_engine",
    "masked_url",
    "normalize_url",
    "read_only",
    "schema_heads",
    "storage_errors",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
DEFAULT_BUSY_TIMEOUT_MS = 10_000
DEFAULT_SQLITE_SYNCHRONOUS = "full"
SQLITE_SYNCHRONOUS_LEVELS = {"normal": 1, "full": 2, "extra": 3}  # PRAGMA synchronous values
LAZY_COMMIT_OPTION = "gengbao_lazy_commit"  # see lazy_commit()
_PG_UPGRADE_LOCK = 0x67656E6762616F  # "gengbao": serializes concurrent upgrades


def normalize_url(url: str | URL) -> URL:
    """Parse *url*; a plain ``postgresql://`` (or ``postgres://``) URL gets psycopg 3."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise StorageError(f"invalid database URL: {error}") from error
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def make_engine(
    url: str | URL,
    *,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    echo: bool = False,
    sqlite_synchronous: str = DEFAULT_SQLITE_SYNCHRONOUS,
) -> Engine:
    """An engine for *url*, configured for gengbao (see the module docstring).

    A SQLite file's folder is created if missing (``var/`` on first use).
    *sqlite_synchronous* (``full``, ``normal`` or ``extra``) is SQLite's
    ``PRAGMA synchronous``; PostgreSQL ignores it.
    """
    if sqlite_synchronous.lower() not in SQLITE_SYNCHRONOUS_LEVELS:
        allowed = ", ".join(SQLITE_SYNCHRONOUS_LEVELS)
        raise StorageError(
            f"unknown SQLite synchronous level {sqlite_synchronous!r}; use one of: {allowed}"
        )
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StorageError(
            f"unsupported database {masked_url(parsed)}; use sqlite:// or postgresql://",
            url=masked_url(parsed),
        )
    kwargs: dict[str, Any] = {"echo": echo, "json_serializer": _dumps}
    if backend == "sqlite":
        _make_sqlite_folder(parsed)
        kwargs["connect_args"] = {"timeout": busy_timeout_ms / 1000}
        if queued_file(parsed.database or ""):
            kwargs["connect_args"]["factory"] = WriterQueuedConnection
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        raise StorageError(f"cannot use {masked_url(parsed)}: {error}") from error
    if backend == "sqlite":
        _configure_sqlite(engine, busy_timeout_ms, sqlite_synchronous.upper())
    else:
        _configure_postgres(engine, name="application_name" not in parsed.query)
    count_checkouts(engine)
    return engine


def _configure_postgres(engine: Engine, *, name: bool) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        if connection.get_execution_options().get(LAZY_COMMIT_OPTION, False):
            connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")

    if name:
        _name_connections(engine)


def _name_connections(engine: Engine) -> None:
    """``application_name`` = ``gengbao HOST:PID``, read when each connection is made (a
    forked worker names its own): ``pg_stat_activity`` tells which process holds which."""

    @event.listens_for(engine, "do_connect")
    def _on_connect(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        # HOST:PID as engine.process.worker_id() spells it (the store imports no engine module)
        name = f"gengbao {socket.gethostname()}:{os.getpid()}"
        cparams.setdefault("application_name", name[:63])


def _make_sqlite_folder(url: URL) -> None:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {synchronous}")  # a checked keyword
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()
        if isinstance(dbapi_connection, WriterQueuedConnection):
            dbapi_connection.synchronous = synchronous

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        options = connection.get_execution_options()
        if options.get(READ_ONLY_OPTION, False):
            connection.exec_driver_sql("BEGIN")
            return
        dbapi_connection = connection.connection.dbapi_connection
        if isinstance(dbapi_connection, WriterQueuedConnection):
            lazy = options.get(LAZY_COMMIT_OPTION, False)
            dbapi_connection.use_synchronous("NORMAL" if lazy else synchronous)
            dbapi_connection.queue_for_write(busy_timeout_ms / 1000)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            if isinstance(dbapi_connection, WriterQueuedConnection):
                dbapi_connection.writer_done()
            raise


def lazy_commit(engine: Engine) -> Engine:
    """A view of *engine* whose write transactions commit without waiting for the disk.

    SQLite commits them with ``synchronous=NORMAL`` (the WAL is not synced; the next
    durable commit syncs them with it), PostgreSQL with ``synchronous_commit = off``.
    A process crash loses none of them; a power loss or an OS crash may roll back
    the last ones, never corrupting anything.  So use it only for bookkeeping whose
    loss is redone safely: the dispatcher's expansions, claims and send outcomes (a
    lost one means a message is sent again under its dedupe key, as after a
    dispatcher died mid-send).  Never for a case's change, its timers or its outbox.
    """
    return engine.execution_options(**{LAZY_COMMIT_OPTION: True})


def read_only(engine: Engine) -> Engine:
    """A view of *engine* whose SQLite transactions start deferred (shared read lock).

    Use it only for transactions that never write: they then run beside a
    writer instead of queueing for the write lock.  No effect on PostgreSQL.
    """
    return engine.execution_options(**{READ_ONLY_OPTION: True})


storage_errors = map_storage_errors  # the older name; it lives in engine.store.errors


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config for gengbao's migrations (no ``alembic.ini`` involved).

    With *connection*, migrations run on it inside its transaction; without,
    ``env.py`` connects to ``$GENGBAO_DATABASE_URL`` (for ``command.revision``
    with autogenerate, ``command.check``, ...).
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the migrations up to *revision* in one transaction (idempotent)."""
    from alembic import command

    with storage_errors(engine, "migrate"), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_UPGRADE_LOCK})
        command.upgrade(alembic_config(connection), revision)


def schema_heads() -> tuple[str, ...]:
    """The head revision(s) of the migrations shipped with this code."""
    from alembic.script import ScriptDirectory

    return tuple(ScriptDirectory.from_config(alembic_config()).get_heads())


def ensure_schema(engine: Engine) -> None:
    """Bring the database to the current schema unless it is already there.

    Refuses a database migrated by a newer gengbao (an unknown revision).
    """
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(schema_heads())
    script = ScriptDirectory.from_config(alembic_config())
    with storage_errors(engine, "connect to"), read_only(engine).connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    if current == heads:
        return
    unknown = [rev for rev in current if not _known_revision(script, rev)]
    if unknown:
        raise StorageError(
            f"database {masked_url(engine.url)} is at schema revision {', '.join(unknown)}, "
            "which this gengbao does not know (it was migrated by a newer version)",
            url=masked_url(engine.url),
            revisions=unknown,
        )
    upgrade(engine)


def _known_revision(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown id
        return False
