"""Many rows into one table with one driver ``executemany``: the bulk import's write.

``conn.execute(insert(table), rows)`` spends most of its time, for thousands
of rows, in SQLAlchemy's per-value bind processing (a UTC conversion and a
text rendering per timestamp, on every row).  :func:`insert_many` runs the
table's INSERT through :class:`~engine.store.prepared.Prepared`: compiled once
per dialect and set of columns, each column's own bind processor (the same
conversion SQLAlchemy applies: ``UTCDateTime``, JSON on SQLite, JSONB on
PostgreSQL) applied once per distinct value of the batch.  The values stored
are exactly those ``conn.execute`` stores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, insert

from engine.store.prepared import Prepared

__all__ = ["insert_many"]


@cache
def _insert(table: Table, columns: tuple[str, ...]) -> Prepared:
    return Prepared(insert(table), columns)


def insert_many(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert *rows* (each with the same keys) into *table* in one ``executemany``."""
    if rows:
        _insert(table, tuple(rows[0])).executemany(conn, rows)
