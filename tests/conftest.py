"""Shared fixtures, defined once: databases, the clock, the App, loopback receivers, servers.

``engine`` is parametrized over ``sqlite`` (a file in ``tmp_path``, copied
from a template migrated once per session) and ``postgres`` (only when
``$GENGBAO_TEST_POSTGRES_URL`` is set; one schema ``gb_<random>`` per
session, reached through ``search_path`` in the URL, emptied before each
test and dropped at the end, so concurrent runs never collide).  Tests that
need several engines on the same database take ``database`` and call
``database.new_engine()``.

``clock`` is a FixedClock at ``START`` (Friday 2026-09-18 10:00 in
Shanghai); a module whose story starts elsewhere defines its own ``clock``.
``app`` is the farmland App on the test's database and that clock; a module
adds settings (channels, retry policies) by defining ``app_settings``.
``server`` is a real ``gengbao serve`` per backend, one per test module.
The classes behind these live in ``tests/support/``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.app import App
from engine.clock import FixedClock
from engine.store.db import make_engine, upgrade
from engine.store.tables import metadata
from tests.support import properties
from tests.support.api_server import ApiServer, running_server
from tests.support.databases import BACKENDS, PG_ENV, Database, PostgresSchemas
from tests.support.farmland import START, farmland_app
from tests.support.receivers import HttpReceiver, SmtpReceiver

properties.load_profile()


# -- databases -------------------------------------------------------------------


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
        # grid_stamp keeps its one row (migration 0014 seeds it; truncating the grid
        # tables bumps it through their TRUNCATE triggers)
        tables = ", ".join(t.name for t in metadata.sorted_tables if t.name != "grid_stamp")
        with db.new_engine().begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def engine(database: Database) -> sa.Engine:
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


# -- the clock and the App ---------------------------------------------------------


@pytest.fixture
def clock() -> FixedClock:
    """The fake clock, at START; tests move it."""
    return FixedClock(START)


@pytest.fixture
def app_settings() -> dict[str, Any]:
    """Settings of the ``app`` fixture besides the database (a module may define its own)."""
    return {}


@pytest.fixture
def app(database: Database, clock: FixedClock, app_settings: dict[str, Any]) -> Iterator[App]:
    """The farmland App (demo grid, bundled workflow) on the test's database and clock."""
    application = farmland_app(database.url, clock, **app_settings)
    try:
        yield application
    finally:
        application.close()


# -- loopback receivers and the server ---------------------------------------------


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """A real ``gengbao serve`` on a fresh database of each backend, one per module."""
    with running_server(request.param, request, tmp_path_factory) as srv:
        yield srv
