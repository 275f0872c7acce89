"""Small facts the engine keeps about itself, by key (the ``system_values`` table's owner).

Today one key: ``calendar.fingerprint``, the calendar data the pending timers
were last computed from (:mod:`engine.timers.recompute`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from engine.store.tables import system_values

__all__ = ["read_value", "write_value"]


def read_value(conn: Connection, key: str) -> str | None:
    value: str | None = conn.execute(
        select(system_values.c.value).where(system_values.c.key == key)
    ).scalar_one_or_none()
    return value


def write_value(conn: Connection, key: str, value: str, at: dt.datetime) -> None:
    """Set *key* to *value* (one upsert: concurrent writers never collide; the last wins)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(system_values).values(key=key, value=value, updated_at=at)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[system_values.c.key],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
    )
