"""Test databases: a SQLite file or a PostgreSQL schema, and the engines made on them.

The fixtures that hand these out (``database``, ``engine``, ``empty_database``,
``pg_schemas``) are in ``tests/conftest.py``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from engine.store.db import make_engine, normalize_url

__all__ = ["BACKENDS", "PG_ENV", "Database", "PostgresSchemas", "schema_url"]

PG_ENV = "GENGBAO_TEST_POSTGRES_URL"
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
