"""The outcomes of sends, committed together: one transaction for all that are waiting.

Each send of a lane ends by recording its outcome (``sent``, a retry time, or
``dead``).  Committed one by one, that is one durable commit — an fsync on
SQLite — per message, and the lane threads queue for the database one after
another.  :class:`GroupCommit` lets them share: a thread hands in its
outcome and, unless another thread is already writing, writes every outcome
handed in so far in one transaction; a thread that arrives while a write runs
waits for the next one, which carries its outcome with the others.  Every
caller returns only once its own outcome is committed, as before.

If the shared transaction fails, each of its outcomes is written again on its
own, so one outcome that cannot be written (its row gone, say) fails only its
own caller.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Connection

__all__ = ["GroupCommit"]

Item = TypeVar("Item")


@dataclass(eq=False)
class _Waiting(Generic[Item]):
    item: Item
    done: bool = False
    error: Exception | None = None


class GroupCommit(Generic[Item]):
    """Writes handed-in items with *write(conn, items)* inside *transaction()*, together."""

    def __init__(
        self,
        transaction: Callable[[], AbstractContextManager[Connection]],
        write: Callable[[Connection, Sequence[Item]], None],
    ) -> None:
        self._transaction = transaction
        self._write = write
        self._queue: list[_Waiting[Item]] = []
        self._queue_lock = threading.Lock()
        self._writer = threading.Lock()
        self.commits = 0  # transactions committed (a statistic)

    @property
    def waiting(self) -> int:
        """Outcomes handed in and not yet taken by a write."""
        with self._queue_lock:
            return len(self._queue)

    def record(self, item: Item) -> None:
        """Commit *item*, with whatever else is waiting; raise what writing it raised."""
        waiting = _Waiting(item)
        with self._queue_lock:
            self._queue.append(waiting)
        with self._writer:
            if not waiting.done:  # not carried by the write that ran while we waited
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        if waiting.error is not None:
            raise waiting.error

    def _commit(self, batch: list[_Waiting[Item]]) -> None:
        try:
            self._write_together(batch)
        except Exception as error:
            if len(batch) == 1:
                batch[0].error = error
            else:
                for waiting in batch:  # alone, so one bad item fails only its own caller
                    try:
                        self._write_together([waiting])
                    except Exception as alone:
                        waiting.error = alone
        for waiting in batch:
            waiting.done = True

    def _write_together(self, batch: list[_Waiting[Item]]) -> None:
        with self._transaction() as conn:
            self._write(conn, [w.item for w in batch])
        self.commits += 1
