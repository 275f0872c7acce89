"""The storage room: what every service needs from the database besides its own SQL.

errors.py       SQLAlchemy's exceptions → the :class:`~engine.errors.StorageError` branch,
                at the point where a service opens a connection or a transaction
                (:func:`transaction`, :func:`connection`, :func:`map_storage_errors`)
checkout.py     one pooled connection for a whole HTTP request (:func:`one_checkout`),
                reused by :func:`connection` and :func:`transaction`; pool checkout counts
sqlite_writers.py  SQLite writers of one process queue on a lock that wakes the next at
                once, not in SQLite's sleeping busy handler
dialect.py      the differences between SQLite and PostgreSQL that services meet:
                ``FOR UPDATE`` (:func:`for_update`), ``SKIP LOCKED`` (:func:`skip_locked`),
                insert-or-ignore (:func:`insert_or_ignore`), ``ON CONFLICT``
                (:func:`dialect_insert`), a bounded lock wait
                (:func:`lock_wait_limit`)

Services never test the dialect themselves: SQLite has no row locks (a writer
holds the whole database from ``BEGIN IMMEDIATE``, see :mod:`engine.store.db`), so
there the locking helpers return the statement unchanged.
"""

from __future__ import annotations

from engine.store.checkout import (
    SharedConnection,
    begin_unit,
    end_unit,
    one_checkout,
    process_checkouts,
)
from engine.store.dialect import (
    dialect_insert,
    for_update,
    insert_or_ignore,
    lock_wait_limit,
    skip_locked,
)
from engine.store.errors import (
    DRIVER_ERROR,
    connection,
    map_storage_errors,
    masked_url,
    read_retrying,
    storage_error_for,
    transaction,
)

__all__ = [
    "DRIVER_ERROR",
    "SharedConnection",
    "begin_unit",
    "connection",
    "dialect_insert",
    "end_unit",
    "for_update",
    "insert_or_ignore",
    "lock_wait_limit",
    "map_storage_errors",
    "masked_url",
    "one_checkout",
    "process_checkouts",
    "read_retrying",
    "skip_locked",
    "storage_error_for",
    "transaction",
]
