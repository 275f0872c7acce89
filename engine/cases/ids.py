"""Short, readable record ids that never collide: ``C20261201-0042``.

An id is a prefix, the day and that day's sequence number, drawn from a
counter row per (prefix, day) in the transaction that inserts the record: the
number is taken under the row's lock (PostgreSQL) or the writer's lock
(SQLite), so two transactions never draw the same number, and a rolled-back
insert gives its number back.  Four digits at least, so ids read out on the
phone stay short: ``C20261201-0007`` … ``C20261201-12345``.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from sqlalchemy import Connection

from engine.store import dialect_insert
from engine.store.tables import id_counters

__all__ = ["next_id", "next_ids"]


@cache
def _draw(dialect: str) -> Any:
    """The counter's upsert, built once per dialect (parameters prefix, day, last: how
    many numbers to draw)."""
    statement = dialect_insert(id_counters, dialect)
    return statement.on_conflict_do_update(
        index_elements=[id_counters.c.prefix, id_counters.c.day],
        set_={"last": id_counters.c.last + statement.excluded.last},
    ).returning(id_counters.c.last)


def next_id(conn: Connection, prefix: str, now: dt.datetime) -> str:
    """The next id of *prefix* on *now*'s day, e.g. ``next_id(conn, "C", now)``."""
    return next_ids(conn, prefix, now, 1)[0]


def next_ids(conn: Connection, prefix: str, now: dt.datetime, count: int) -> list[str]:
    """The next *count* ids of *prefix* on *now*'s day, contiguous, drawn in one counter
    update (a bulk import takes its whole block at once)."""
    if count < 1:
        return []
    day = f"{now:%Y%m%d}"
    params = {"prefix": prefix, "day": day, "last": count}
    last = conn.execute(_draw(conn.dialect.name), params).scalar_one()
    return [f"{prefix}{day}-{n:04d}" for n in range(last - count + 1, last + 1)]
