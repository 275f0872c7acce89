"""SQLite writers of one process queue on a lock that wakes them at once.

SQLite lets one writer at a time hold a database file: a second ``BEGIN
IMMEDIATE`` finds it busy and SQLite's busy handler sleeps and retries, in
steps of 1, 2, 5, 10, … up to 100 ms.  Under concurrent writers (the HTTP
server's request threads, its timer sweep and its dispatcher) most of a
waiter's time is that sleep after the lock was already free again.

So each file connection is a :class:`WriterQueuedConnection`: before its
``BEGIN IMMEDIATE`` it takes the process's lock for that file
(:meth:`~WriterQueuedConnection.queue_for_write`) and gives it back once its
transaction has ended (commit, rollback or close), so the next writer in this
process is woken the moment the file is free.

The lock only orders writers; SQLite's own lock stays the truth.  A writer
that waits for the lock longer than the busy timeout goes on without it (SQLite
then decides, as before), and a thread that already holds the lock for one
transaction does not wait for it again (its second transaction meets SQLite's
lock, as it would without this module).  Writers in other processes queue on
SQLite's lock as before.  In-memory and ``file:`` URI databases are left alone.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any

__all__ = ["WriterQueuedConnection", "queued_file"]


class _FileLock:
    """The process's writer lock for one database file, and the thread holding it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner: int | None = None


_locks: dict[str, _FileLock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: str) -> _FileLock:
    with _locks_guard:
        return _locks.setdefault(path, _FileLock())


def queued_file(database: str) -> bool:
    """Whether a connection to *database* (a URL's database part) queues its writers."""
    return bool(database) and database != ":memory:" and not database.startswith("file:")


class WriterQueuedConnection(sqlite3.Connection):
    """A ``sqlite3`` connection whose write transactions queue on the file's process lock."""

    def __init__(self, database: str | os.PathLike[str], *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._file_lock = _lock_for(os.path.realpath(database))
        self._holds_lock = False
        self.synchronous = ""  # PRAGMA synchronous as last set (engine.store.db sets it)

    def use_synchronous(self, level: str) -> None:
        """``PRAGMA synchronous = level`` (a checked keyword) unless it is already."""
        if level != self.synchronous:
            self.execute(f"PRAGMA synchronous = {level}")
            self.synchronous = level

    def queue_for_write(self, timeout: float) -> None:
        """Wait (up to *timeout* seconds) until no other writer of this process holds the file."""
        file_lock, me = self._file_lock, threading.get_ident()
        if self._holds_lock or file_lock.owner == me:
            return
        if file_lock.lock.acquire(timeout=timeout):
            file_lock.owner = me
            self._holds_lock = True

    def writer_done(self) -> None:
        """Give the lock back unless a transaction is still open on this connection."""
        if not self._holds_lock:
            return
        try:
            still_open = self.in_transaction
        except sqlite3.ProgrammingError:  # closed: nothing is open any more
            still_open = False
        if not still_open:
            self._holds_lock = False
            self._file_lock.owner = None
            self._file_lock.lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.writer_done()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.writer_done()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.writer_done()
