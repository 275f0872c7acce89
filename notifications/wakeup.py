"""Wake the dispatcher when a transaction that queued notifications commits.

The dispatcher does not poll on a fixed interval: it sleeps until told that
there is something to send, with a slow poll kept only as a fallback.

- **In process** (both backends): :func:`mark` — called by
  :func:`notifications.outbox.enqueue` inside the enqueueing transaction —
  flags the connection.  Once that transaction has committed and its
  connection is back in the pool, every :class:`Wakeup` subscribed to the
  engine is set.  A transaction that rolls back wakes nobody.  The signal is
  raised only *after* the commit (SQLAlchemy's ``commit`` event comes before
  the database commits; the pool's ``checkin`` comes after), so a woken
  dispatcher always finds the rows.
- **Across processes** (PostgreSQL): a trigger on ``notifications``
  (migration 0014) issues ``NOTIFY gengbao_outbox`` for every insert, so the
  enqueueing transaction spends no statement on it; PostgreSQL delivers it on
  commit, once per transaction, and never for a transaction that rolled back.  :class:`Wakeup`
  keeps one dedicated connection that ``LISTEN``\\ s; it reconnects after a
  lost connection (and wakes once then, in case it missed something).

On SQLite several processes get no cross-process signal; the fallback poll
(``serve.dispatch_seconds``) picks up what another process (a CLI command)
queued.  A spurious wake-up costs one cheap query, a missed one at most the
fallback interval: the signals err on the side of waking.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.pool import Pool

__all__ = ["NOTIFY_CHANNEL", "Wakeup", "install", "mark"]

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "gengbao_outbox"

# Flags in ``Connection.info``, which is the pooled DBAPI connection's record:
_QUEUED = "gengbao.outbox.queued"  # this transaction queued a notification
_COMMITTED = "gengbao.outbox.committed"  # it committed: wake on checkin


class _Hub:
    """The wake-ups subscribed to one engine's pool."""

    def __init__(self) -> None:
        self.subscribers: weakref.WeakSet[Wakeup] = weakref.WeakSet()
        self.lock = threading.Lock()

    def wake(self) -> None:
        with self.lock:
            subscribers = list(self.subscribers)
        for wakeup in subscribers:
            wakeup.set()


_HUBS: weakref.WeakKeyDictionary[Pool, _Hub] = weakref.WeakKeyDictionary()
_HUBS_LOCK = threading.Lock()


def install(engine: Engine) -> None:
    """Watch *engine*'s transactions for queued notifications (idempotent)."""
    with _HUBS_LOCK:
        if engine.pool in _HUBS:
            return
        _HUBS[engine.pool] = hub = _Hub()
    event.listen(engine, "commit", _on_commit)
    event.listen(engine, "rollback", _on_rollback)

    def on_checkin(_dbapi: Any, record: Any) -> None:
        if record is not None and record.info.pop(_COMMITTED, False):
            hub.wake()

    event.listen(engine.pool, "checkin", on_checkin)


def mark(conn: Connection) -> None:
    """This transaction queued a notification: wake the dispatchers once it commits."""
    conn.info[_QUEUED] = True


def _on_commit(conn: Connection) -> None:
    info = conn.info
    if info.pop(_QUEUED, False):
        info[_COMMITTED] = True


def _on_rollback(conn: Connection) -> None:
    if conn.invalidated:  # the connection died: its info goes with it (cleared on reconnect),
        return  # and reading conn.info now would raise PendingRollbackError out of close()
    conn.info.pop(_QUEUED, None)


class Wakeup:
    """What a dispatcher waits on: set by commits in this process and, on
    PostgreSQL, by ``NOTIFY`` from any process (after :meth:`start`)."""

    def __init__(self, engine: Engine, *, reconnect_seconds: float = 2.0) -> None:
        install(engine)
        self.engine = engine
        self.reconnect_seconds = reconnect_seconds
        self._event = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listening: Any = None  # the LISTEN connection, while there is one
        self.notifications = 0  # NOTIFYs received (for tests and logs)
        with _HUBS_LOCK:
            hub = _HUBS[engine.pool]
        with hub.lock:
            hub.subscribers.add(self)

    # -- the signal ------------------------------------------------------
    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def wait(self, timeout: float) -> bool:
        """Block until woken or *timeout* seconds pass; True when woken."""
        return self._event.wait(timeout)

    # -- PostgreSQL LISTEN -------------------------------------------------
    def start(self) -> None:
        """Listen for ``NOTIFY`` from other processes (PostgreSQL; nothing on SQLite)."""
        if self.engine.dialect.name != "postgresql" or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._listen_forever, name="gengbao-outbox-listen", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    @property
    def listening(self) -> bool:
        return self._listening is not None

    def _listen_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # a lost connection: fall back to polling, then retry
                log.warning(
                    "outbox LISTEN connection lost (%s: %s); reconnecting in %g s",
                    type(exc).__name__,
                    exc,
                    self.reconnect_seconds,
                )
            self._stop.wait(self.reconnect_seconds)

    def _listen(self) -> None:
        raw = self.engine.raw_connection()
        dbapi: Any = raw.driver_connection  # a psycopg.Connection
        raw.detach()  # a connection of its own, never returned to the pool
        if dbapi is None:  # pragma: no cover - psycopg always has one
            raise RuntimeError("no driver connection to LISTEN on")
        try:
            dbapi.autocommit = True
            dbapi.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self._listening = dbapi
            self.set()  # anything queued while we were not listening
            while not self._stop.is_set():
                for _ in dbapi.notifies(timeout=0.5):
                    self.notifications += 1
                    self.set()
        finally:
            self._listening = None
            dbapi.close()
