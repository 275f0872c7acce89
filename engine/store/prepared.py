"""A hot write statement compiled once per dialect, then run as driver SQL.

``conn.execute(statement, params)`` on a statement built once still looks the
compiled form up in SQLAlchemy's cache, builds the parameters through the
compiled object and wraps the cursor in a result: tens of microseconds per
statement, more than the driver spends on a small indexed write.  For the few
writes every event makes, :class:`Prepared` compiles the Core statement once
per dialect (with the columns it sets), keeps the SQL text, the order of its
parameters and each parameter's bind processor (so ``UTCDateTime``, JSON and
every other column type convert values exactly as on the normal path), and
runs it with :meth:`Connection.exec_driver_sql`.  That is still SQLAlchemy's
connection: the same transaction, the same ``before_cursor_execute`` events,
and driver errors wrapped as ``DBAPIError`` for :mod:`engine.store.errors`.

For writes whose results are not read (or only an integer, as RETURNING id);
reads keep the normal path, which converts result types.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, CursorResult
from sqlalchemy.sql.dml import UpdateBase

__all__ = ["Prepared"]

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters, in the order a positional driver takes them
    processors: tuple[Processor, ...]
    positional: bool
    constants: dict[str, Any]  # literal values the statement itself carries
    _values: Callable[[Mapping[str, Any]], tuple[Any, ...]] = field(init=False, repr=False)
    _converted: tuple[tuple[int, Callable[[Any], Any]], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # the values in order by one C-level itemgetter; only the columns with a
        # processor (timestamps, JSON) are touched again in Python
        object.__setattr__(self, "_values", _getter(self.names))
        converted = tuple((i, p) for i, p in enumerate(self.processors) if p is not None)
        object.__setattr__(self, "_converted", converted)

    def bind(self, params: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        given = {**self.constants, **params} if self.constants else params
        values: Sequence[Any] = self._values(given)
        if self._converted:
            values = list(values)
            for i, process in self._converted:
                values[i] = process(values[i])
            values = tuple(values)
        return values if self.positional else dict(zip(self.names, values, strict=True))

    def memoized(self) -> _Compiled:
        """The same, with each processor remembering its answers (for one batch)."""
        return _Compiled(
            self.sql,
            self.names,
            tuple(None if p is None else _remembering(p) for p in self.processors),
            self.positional,
            self.constants,
        )


def _getter(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """``given → tuple(given[n] for n in names)``, by one ``itemgetter`` where it can."""
    if len(names) > 1:
        return itemgetter(*names)
    if names:
        one = itemgetter(names[0])
        return lambda given: (one(given),)
    return lambda given: ()


_UNHASHED = (dict, list)  # JSON documents: processed every time


def _remembering(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    # by identity: the rows of a batch share their value objects, and an aware
    # datetime's hash is dear; the value is kept in the memo, so its id stays its own
    memo: dict[int, tuple[Any, Any]] = {}

    def convert(value: Any) -> Any:
        if value is None or isinstance(value, _UNHASHED):
            return process(value)
        known = memo.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        done = process(value)
        memo[id(value)] = (value, done)
        return done

    return convert


class Prepared:
    """*statement* (an INSERT, UPDATE or DELETE) with the parameter names *keys*: the
    columns it sets and the names of its ``bindparam`` s; every call passes them all."""

    def __init__(self, statement: UpdateBase, keys: Sequence[str]) -> None:
        self.statement = statement
        self.keys = tuple(keys)
        self._by_dialect: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> CursorResult[Any]:
        compiled = self._compiled(conn)
        return conn.exec_driver_sql(compiled.sql, compiled.bind(params))

    def executemany(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """All *rows* in one driver ``executemany``.  Each column's processor runs once
        per distinct value object: a batch's rows share their timestamps, and converting
        an aware datetime (to UTC, then text on SQLite) is most of a row's cost."""
        if not rows:
            return
        compiled = self._compiled(conn)
        if len(rows) == 1:
            conn.exec_driver_sql(compiled.sql, [compiled.bind(rows[0])])
            return
        memoized = compiled.memoized()
        conn.exec_driver_sql(compiled.sql, [memoized.bind(r) for r in rows])

    def _compiled(self, conn: Connection) -> _Compiled:
        dialect = conn.dialect
        found = self._by_dialect.get(dialect.name)
        if found is not None:
            return found
        compiled = self.statement.compile(dialect=dialect, column_keys=list(self.keys))
        positional = bool(compiled.positional)
        names = tuple(compiled.positiontup or ()) if positional else tuple(compiled.binds)
        processors = tuple(
            compiled.binds[name].type._cached_bind_processor(dialect) for name in names
        )
        constants = {n: compiled.binds[n].value for n in names if n not in self.keys}
        made = _Compiled(compiled.string, names, processors, positional, constants)
        with self._lock:
            return self._by_dialect.setdefault(dialect.name, made)
