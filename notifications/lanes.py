"""A lane: one channel's sends, at most ``size`` at once, on threads of its own.

A hanging endpoint occupies only the slots of its own lane, each for at most
the channel's ``timeout`` per network operation; the other channels keep
their own threads.  The dispatch loop claims no more rows for a lane than it
has free slots, so nothing claimed waits in a queue while its lease runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from notifications.dispatch import Sent

__all__ = ["Lane"]

log = logging.getLogger(__name__)


class Lane:
    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"gengbao-{name}")
        self._lock = threading.Lock()
        self._busy = 0

    @property
    def busy(self) -> int:
        with self._lock:
            return self._busy

    def free(self) -> int:
        with self._lock:
            return self.size - self._busy

    def submit(self, send: Callable[[], Sent], done: Callable[[Sent | None], None]) -> None:
        """Run *send* on a free thread, then ``done(its result)`` (None if it raised)."""
        with self._lock:
            if self._busy >= self.size:
                raise RuntimeError(f"lane {self.name}: all {self.size} slots are busy")
            self._busy += 1
        self._pool.submit(self._run, send, done)

    def _run(self, send: Callable[[], Sent], done: Callable[[Sent | None], None]) -> None:
        result: Sent | None = None
        try:
            result = send()
        except Exception:  # e.g. the database is down: the lease runs out, the row is sent again
            log.exception("channel %s: a send could not be recorded", self.name)
        finally:
            with self._lock:
                self._busy -= 1
            done(result)

    def close(self) -> None:
        """Wait for the sends in flight (each bounded by its channel's timeout)."""
        self._pool.shutdown(wait=True)
