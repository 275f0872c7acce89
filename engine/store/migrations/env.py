"""Alembic environment for gengbao.

Normally run through :func:`engine.store.db.upgrade`, which passes an open
connection in ``config.attributes["connection"]`` and owns the transaction.
Without one (``alembic.command.revision(engine.store.db.alembic_config(),
autogenerate=True, message=...)`` when writing a new migration), an engine
is built from ``$GENGBAO_DATABASE_URL``.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from engine.store.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from engine.store.db import make_engine

    url = os.environ.get("GENGBAO_DATABASE_URL", "sqlite:///var/gengbao.db")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("gengbao migrations run online only (use engine.store.db.upgrade)")
_run_online()
