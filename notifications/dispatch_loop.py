"""The dispatch loop: sends as soon as a notification commits, each channel on its own.

One thread runs passes back to back while there is work, then sleeps until
woken (:mod:`notifications.wakeup`: a commit in this process, or ``NOTIFY``
from another on PostgreSQL), until the next retry falls due, or at the latest
after ``poll_seconds`` (the fallback poll).  A pass:

1. reads, without a lock, whether notifications are pending and which
   channels have deliveries due (a ``LIMIT 1`` probe per channel);
2. expands one batch of pending notifications into deliveries (urgent first);
3. for each channel with due deliveries, claims as many due rows as its :class:`Lane` has
   free slots (urgent first) and hands them to the lane's threads.

So a channel's backlog never starves another (each claims its own rows), a
hanging endpoint holds only its own lane's slots, and there is no interval
job to be skipped while a slow pass runs.  Claims stay leases: a dispatcher
that dies mid-send loses them, and the rows are sent again under the same
dedupe key.  :meth:`DispatchLoop.stop` waits for the sends in flight, so no
claim is left behind by a clean shutdown.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable

from notifications.dispatch import Dispatcher, Sent
from notifications.lanes import Lane
from notifications.wakeup import Wakeup

__all__ = ["DispatchLoop"]

log = logging.getLogger(__name__)

MIN_WAIT = 0.01  # seconds; never spin


class DispatchLoop:
    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        poll_seconds: float = 5.0,
        wakeup: Wakeup | None = None,
        on_sent: Callable[[Sent], None] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.poll_seconds = poll_seconds
        self.wakeup = wakeup or Wakeup(dispatcher.engine)
        self.on_sent = on_sent
        self.lanes: dict[str, Lane] = {}
        self.passes = 0
        self._lock = threading.Lock()
        self._results: list[Sent] | None = None  # collected while draining
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- running in the background (gengbao serve) -------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self.wakeup.start()
        self._thread = threading.Thread(target=self._run, name="gengbao-dispatch")
        self._thread.start()

    def stop(self) -> None:
        """Stop claiming, wait for the sends in flight, stop listening."""
        self._stop.set()
        self.wakeup.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        self._close_lanes()
        self.wakeup.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.wakeup.clear()
            try:
                busy, wait = self.step()
            except Exception:  # the database is away, say: keep the loop alive, retry soon
                log.exception("dispatch pass failed")
                self._stop.wait(min(1.0, self.poll_seconds))
                continue
            if not busy:
                self.wakeup.wait(wait)

    # -- one pass ----------------------------------------------------------
    def step(self) -> tuple[bool, float]:
        """One pass; returns (whether it did anything, how long to sleep if not)."""
        d = self.dispatcher
        self.passes += 1
        backlog = d.backlog()  # read-only: an idle pass takes no write lock
        due = set(backlog.due_channels)
        expanded = 0
        if backlog.pending_notifications:
            expansion = d.expand_batch()
            expanded = expansion.notifications
            due |= expansion.channels  # the new deliveries are due now
        claimed = 0
        for name in sorted(due):
            lane = self.lane(name)
            free = lane.free()
            if free <= 0:
                continue  # woken again when one of its sends finishes
            for row in d.claim(name, min(free, d.policy.batch)):
                lane.submit(functools.partial(d.deliver, row), self._done)
                claimed += 1
        wait = self.poll_seconds
        if backlog.next_due is not None:
            until = (backlog.next_due - d.clock.now()).total_seconds()
            wait = max(MIN_WAIT, min(wait, until))
        return bool(expanded or claimed), wait

    def lane(self, channel: str) -> Lane:
        with self._lock:
            lane = self.lanes.get(channel)
            if lane is None:
                lane = self.lanes[channel] = Lane(
                    channel, self.dispatcher.policy.lane_size(channel)
                )
            return lane

    def _done(self, result: Sent | None) -> None:
        if result is not None:
            with self._lock:
                if self._results is not None:
                    self._results.append(result)
            if self.on_sent is not None:
                self.on_sent(result)
        self.wakeup.set()  # a slot is free: claim more for that lane

    # -- one pass to the end, in the foreground (notifications dispatch --once)
    def drain(self) -> list[Sent]:
        """Send everything due now, each channel on its lane; returns the outcomes.

        Ends when nothing is left to expand or claim and every lane is idle
        (retries scheduled for later are not waited for).
        """
        with self._lock:
            self._results = []
        while True:
            self.wakeup.clear()
            busy, _ = self.step()
            in_flight = any(lane.busy for lane in list(self.lanes.values()))
            if not busy and not in_flight:
                break
            if not busy:
                self.wakeup.wait(self.poll_seconds)  # until a send finishes
        self._close_lanes()
        with self._lock:
            results, self._results = self._results or [], None
        return results

    def _close_lanes(self) -> None:
        with self._lock:
            lanes, self.lanes = list(self.lanes.values()), {}
        for lane in lanes:
            lane.close()
