"""Wake the sweep loop when a commit in this process writes a timer due before its planned wake.

The loop (:class:`engine.timers.SweepLoop`) sleeps until the earliest due
timer (:meth:`TimerService.next_due`).  A transaction that writes a timer row
due sooner — an event entering a state with a 30-minute deadline, ``timers
retry``, ``timers recompute`` — must cut that sleep short.  The signal is
raised from the engine's own events, so no service has to call the loop:

- ``after_execute``: an ``INSERT`` into ``timers`` notes the earliest
  ``due_at`` of its rows (``pending`` ones) on the connection; an ``UPDATE``
  that sets ``due_at`` or sets ``status`` to ``'pending'`` notes "unknown"
  (wake whatever the plan).  The sweep's own marks (fired, cancelled, failed)
  note nothing.
- ``commit`` keeps the note for the pool's ``checkin``, which comes after the
  database committed, so a woken loop always finds the rows; ``rollback``
  drops it (a rolled-back savepoint keeps it: a spurious wake-up costs one
  indexed query, a missed one a whole sleep).
- ``checkin`` hands the earliest due time to every :class:`DueWakeup` on the
  engine; each wakes its loop only if that time is before the loop's planned
  wake (or the loop is between a sweep and its plan).

Timers written by *other* processes are not signalled: the loop's sleep is
bounded by its interval (``serve.sweep_seconds``, ``worker --interval``), so
another process's timer fires at most that late — as every timer did when
the loop polled.  (PostgreSQL could carry the signal with ``LISTEN``/``NOTIFY``
as the outbox does; a bounded sleep was judged enough for the CLI and second
servers, whose timers are rarely due within seconds.)
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.pool import Pool
from sqlalchemy.sql.dml import Insert, Update

from engine.store.tables import timers

__all__ = ["DueWakeup", "install", "written"]

# An instant before every due time: "a timer of unknown due time was written".
UNKNOWN = dt.datetime.min.replace(tzinfo=dt.UTC)

_WRITTEN = "gengbao.timers.written"  # earliest due time this transaction wrote
_COMMITTED = "gengbao.timers.committed"  # ... and it committed: wake on checkin


class _Hub:
    def __init__(self) -> None:
        self.subscribers: weakref.WeakSet[DueWakeup] = weakref.WeakSet()
        self.lock = threading.Lock()

    def wake(self, due: dt.datetime) -> None:
        with self.lock:
            subscribers = list(self.subscribers)
        for wakeup in subscribers:
            wakeup.offer(due)


_HUBS: weakref.WeakKeyDictionary[Pool, _Hub] = weakref.WeakKeyDictionary()
_HUBS_LOCK = threading.Lock()


def install(engine: Engine) -> _Hub:
    """Watch *engine*'s transactions for timer rows (idempotent); its hub."""
    with _HUBS_LOCK:
        hub = _HUBS.get(engine.pool)
        if hub is not None:
            return hub
        _HUBS[engine.pool] = hub = _Hub()
    event.listen(engine, "after_execute", _after_execute)
    event.listen(engine, "commit", _on_commit)
    event.listen(engine, "rollback", _on_rollback)

    def on_checkin(_dbapi: Any, record: Any) -> None:
        if record is not None:
            due = record.info.pop(_COMMITTED, None)
            if due is not None:
                hub.wake(due)

    event.listen(engine.pool, "checkin", on_checkin)
    return hub


def _value(values: Mapping[Any, Any], name: str) -> tuple[bool, Any]:
    """(whether the statement sets column *name*, its literal value if it has one)."""
    for key, bound in values.items():
        if getattr(key, "key", key) == name:
            return True, getattr(bound, "value", bound)
    return False, None


def _earliest(statement: Any, multiparams: Sequence[Any], params: Mapping[str, Any]) -> Any:
    """The earliest due time of the timer rows *statement* writes; UNKNOWN when it
    cannot be told; None when it writes no timer that could be due."""
    values: Mapping[Any, Any] = getattr(statement, "_values", None) or {}
    if isinstance(statement, Update):
        sets_due, _ = _value(values, "due_at")
        sets_status, status = _value(values, "status")
        return UNKNOWN if sets_due or (sets_status and status == "pending") else None
    rows: list[Mapping[str, Any]] = [p for p in multiparams if isinstance(p, Mapping)]
    if params:
        rows.append(params)
    if not rows and values:
        _, due = _value(values, "due_at")
        _, status = _value(values, "status")
        rows = [{"due_at": due, "status": status}]
    dues = [r.get("due_at") for r in rows if r.get("status", "pending") == "pending"]
    if not dues:
        return UNKNOWN if not rows else None
    known = [d for d in dues if isinstance(d, dt.datetime) and d.tzinfo is not None]
    return min(known) if len(known) == len(dues) else UNKNOWN


def _after_execute(
    conn: Connection,
    statement: Any,
    multiparams: Sequence[Any],
    params: Mapping[str, Any],
    _options: Any,
    _result: Any,
) -> None:
    if not isinstance(statement, Insert | Update) or statement.table is not timers:
        return
    due = _earliest(statement, multiparams, params)
    if due is not None:
        info = conn.info
        info[_WRITTEN] = min(due, info.get(_WRITTEN, due))


def written(conn: Connection, due: dt.datetime) -> None:
    """A timer due at *due* was written in *conn*'s transaction by a statement the
    listener cannot read (driver SQL: the prepared and bulk inserts)."""
    info = conn.info
    info[_WRITTEN] = min(due, info.get(_WRITTEN, due))


def _on_commit(conn: Connection) -> None:
    due = conn.info.pop(_WRITTEN, None)
    if due is not None:
        earlier = conn.info.get(_COMMITTED)
        conn.info[_COMMITTED] = due if earlier is None else min(due, earlier)


def _on_rollback(conn: Connection) -> None:
    if conn.invalidated:  # the connection died: its info goes with it (cleared on reconnect),
        return  # and reading conn.info now would raise PendingRollbackError out of close()
    conn.info.pop(_WRITTEN, None)


class DueWakeup:
    """What a sweep loop sleeps on: set by a commit in this process that wrote a timer
    due before :attr:`planned`, the loop's next wake.

    The loop calls :meth:`begin` before a sweep at *at* (a commit writing a timer due
    before *at* wakes it: the sweep may not have seen it) and :meth:`plan` once it
    knows its next wake; a timer committed between the two, due before that wake,
    wakes it at once — none slips between the sweep's read and the plan."""

    def __init__(self, engine: Engine) -> None:
        hub = install(engine)
        self._event = threading.Event()
        self._lock = threading.Lock()
        self.planned: dt.datetime | None = None  # None: not planned, any timer wakes
        self._seen: dt.datetime | None = None  # earliest offer since begin()
        self.wakes = 0  # times a commit woke the loop (for tests and the bench)
        self.on_set: Callable[[], None] | None = None  # told after each wake (the scheduler)
        with hub.lock:
            hub.subscribers.add(self)

    def offer(self, due: dt.datetime) -> None:
        """A commit wrote a timer due at *due*: wake if it is before the planned wake."""
        with self._lock:
            self._seen = due if self._seen is None else min(self._seen, due)
            woken = self.planned is None or due < self.planned
            if woken:
                self.wakes += 1
                self._event.set()
        if woken:
            self._told()

    def begin(self, at: dt.datetime) -> None:
        """A sweep at *at* starts: clear the signal; from now on note every offer."""
        with self._lock:
            self._event.clear()
            self.planned = at
            self._seen = None

    def plan(self, at: dt.datetime) -> None:
        """The loop will wake at *at* by itself; wake at once if a commit since
        :meth:`begin` wrote a timer due before then."""
        with self._lock:
            self.planned = at
            woken = self._seen is not None and self._seen < at
            if woken:
                self.wakes += 1
                self._event.set()
        if woken:
            self._told()

    def set(self) -> None:
        self._event.set()
        self._told()

    def _told(self) -> None:
        if self.on_set is not None:
            self.on_set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Block until woken or *timeout* seconds pass; True when woken."""
        return self._event.wait(timeout)
