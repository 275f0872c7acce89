"""Shared fixtures: one database per test, on SQLite and (if configured) PostgreSQL.

``engine`` is parametrized over ``sqlite`` (a file in ``tmp_path``, copied
from a template migrated once per session) and ``postgres`` (only when
``$GENGBAO_TEST_POSTGRES_URL`` is set; one schema ``gb_<random>`` per
session, reached through ``search_path`` in the URL, emptied before each
test and dropped at the end, so concurrent runs never collide).  Tests that
need several engines on the same database take ``database`` and call
``database.new_engine()``.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import settings
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from engine.db import make_engine, normalize_url, upgrade
from engine.tables import metadata

PG_ENV = "GENGBAO_TEST_POSTGRES_URL"

# Property tests: ``ci`` (the default, what ``make test`` and CI run) is
# derandomized with no example database, so a run never depends on what an
# earlier run in this checkout found; ``fuzz`` (``make fuzz``) searches at
# random, ten times longer, and keeps what it finds in ``.hypothesis/``.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("fuzz", derandomize=False)
settings.load_profile(os.environ.get("GENGBAO_HYPOTHESIS_PROFILE", "ci"))
FUZZ = os.environ.get("GENGBAO_HYPOTHESIS_PROFILE") == "fuzz"


def examples(n: int) -> int:
    """*n* property examples, or ten times as many under the fuzz profile."""
    return n * 10 if FUZZ else n


BACKENDS = ["sqlite", "postgres"]


@dataclass
class Database:
    """One test database; every engine made here is disposed after the test."""

    backend: str
    url: str
    engines: list[Engine] = field(default_factory=list)

    def new_engine(self, *, busy_timeout_ms: int | None = None) -> Engine:
        if busy_timeout_ms is None:
            engine = make_engine(self.url)
        else:
            engine = make_engine(self.url, busy_timeout_ms=busy_timeout_ms)
        self.engines.append(engine)
        return engine

    def dispose(self) -> None:
        for engine in self.engines:
            engine.dispose()
        self.engines.clear()


def schema_url(base: str, schema: str) -> str:
    """*base* with ``search_path`` set to *schema* (passed to psycopg as ``options``)."""
    url = normalize_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


class PostgresSchemas:
    """Creates uniquely named schemas on the test server and drops them at the end."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.admin = make_engine(base).execution_options(isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def create(self, tag: str = "") -> str:
        name = f"gb_{tag}{secrets.token_hex(5)}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        self.created.append(name)
        return schema_url(self.base, name)

    def drop(self, url: str) -> None:
        options = make_url(url).query["options"]
        assert isinstance(options, str)
        name = options.split("=", 1)[1]
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        self.created.remove(name)

    def close(self) -> None:
        with self.admin.connect() as conn:
            for name in self.created:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        self.admin.engine.dispose()


@pytest.fixture(scope="session")
def pg_schemas() -> Iterator[PostgresSchemas]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need ${PG_ENV} (e.g. postgresql://postgres@127.0.0.1/test)")
    schemas = PostgresSchemas(base)
    try:
        yield schemas
    finally:
        schemas.close()


@pytest.fixture(scope="session")
def pg_session_url(pg_schemas: PostgresSchemas) -> str:
    """A schema migrated once for the whole session."""
    url = pg_schemas.create()
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "gengbao.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
    finally:
        engine.dispose()  # the last connection checkpoints and removes the -wal file
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty, migrated database (fresh file, or truncated session schema)."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "gengbao.db"
        shutil.copyfile(template, path)
        db = Database(backend, f"sqlite:///{path}")
    else:
        db = Database(backend, request.getfixturevalue("pg_session_url"))
        tables = ", ".join(t.name for t in metadata.sorted_tables)
        with db.new_engine().begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def engine(database: Database) -> Engine:
    """An engine on this test's database."""
    return database.engines[0] if database.engines else database.new_engine()


@pytest.fixture
def empty_database(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Database]:
    """A database with no schema at all (for migration tests)."""
    if backend == "sqlite":
        db = Database(backend, f"sqlite:///{tmp_path / 'empty.db'}")
        url = None
    else:
        schemas: PostgresSchemas = request.getfixturevalue("pg_schemas")
        url = schemas.create("e")
        db = Database(backend, url)
    try:
        yield db
    finally:
        db.dispose()
        if url is not None:
            schemas.drop(url)
