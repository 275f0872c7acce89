"""Many rows into one table with one driver ``executemany``: the bulk import's write.

``conn.execute(insert(table), rows)`` spends most of its time, for thousands
of rows, in SQLAlchemy's per-value bind processing (a UTC conversion and a
text rendering per timestamp, on every row).  :func:`insert_many` compiles the
statement once for the connection's dialect, takes each column's own bind
processor (the same conversion SQLAlchemy applies: ``UTCDateTime``, JSON on
SQLite, JSONB on PostgreSQL), applies it once per distinct scalar value — a
batch's timestamps are mostly one instant — and hands the driver the
processed rows.  The values stored are exactly those ``conn.execute`` stores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert

__all__ = ["insert_many"]

_UNHASHED = (dict, list)


def insert_many(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert *rows* (each with the same keys) into *table* in one ``executemany``."""
    if not rows:
        return
    names = list(rows[0])
    dialect = conn.dialect
    compiled = insert(table).compile(dialect=dialect, column_keys=names)
    processors: dict[str, Callable[[Any], Any] | None] = {
        name: table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    }

    def converter(name: str) -> Callable[[Any], Any]:
        process = processors[name]
        assert process is not None
        # by identity: a batch's rows share their timestamp objects, and an aware
        # datetime's hash is dear; the value is kept in the memo, so its id stays its own
        memo: dict[int, tuple[Any, Any]] = {}

        def convert(value: Any) -> Any:
            if value is None:
                return None
            if isinstance(value, _UNHASHED):
                return process(value)
            known = memo.get(id(value))
            if known is not None and known[0] is value:
                return known[1]
            done = process(value)
            memo[id(value)] = (value, done)
            return done

        return convert

    positional = compiled.positional
    order = list(compiled.positiontup or ()) if positional else names
    convert = [(i, converter(n)) for i, n in enumerate(order) if processors[n] is not None]
    params: list[Any] = []
    for row in rows:
        values = [row[n] for n in order]
        for i, c in convert:
            values[i] = c(values[i])
        params.append(tuple(values) if positional else dict(zip(order, values, strict=True)))
    conn.exec_driver_sql(compiled.string, params)
