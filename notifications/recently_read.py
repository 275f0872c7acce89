"""A small map of values read from the database, reused for a moment, then read again.

The deliveries of one notification go out within milliseconds of each other
(one per person, channel and address), and each message needs the same
context: the notification, its case, the unit chain and the actor's name.
:class:`RecentlyRead` keeps what the first delivery read for *seconds* of
real (monotonic) time, so the others render from it; after that, or for the
:data:`LIMIT` + 1-th key, the value is read again.  A message is therefore
built from what the database held at most that long before it is sent.
A read that raises is not kept: the next delivery reads again, and fails or
succeeds on its own.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["LIMIT", "RecentlyRead"]

LIMIT = 512  # keys kept; the oldest goes first

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RecentlyRead(Generic[K, V]):
    def __init__(
        self, seconds: float, *, clock: Callable[[], float] = time.monotonic, limit: int = LIMIT
    ) -> None:
        self.seconds = seconds
        self.limit = limit
        self._clock = clock
        self._kept: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, read: Callable[[], V]) -> V:
        """The value kept for *key* if it was read less than *seconds* ago, else ``read()``."""
        now = self._clock()
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and now - kept[0] < self.seconds:
                return kept[1]
        value = read()  # outside the lock: two threads may both read; either value is right
        with self._lock:
            self._kept[key] = (now, value)
            self._kept.move_to_end(key)
            while len(self._kept) > self.limit:
                self._kept.popitem(last=False)
        return value
