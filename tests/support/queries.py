"""Rows read straight from the database, for assertions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Engine

if TYPE_CHECKING:
    from engine.app import App

__all__ = ["rows"]


def rows(source: App | Engine, table: sa.Table, *order: str, **where: Any) -> list[Any]:
    """The rows of *table* equal to *where*, ordered by *order* (by default its ``id``)."""
    engine = source if isinstance(source, Engine) else source.engine
    query = sa.select(table)
    for name, value in where.items():
        query = query.where(table.c[name] == value)
    columns = order or (("id",) if "id" in table.c else ())
    query = query.order_by(*(table.c[name] for name in columns))
    with engine.connect() as conn:
        return list(conn.execute(query))
