"""The sweep loop: sleep until the next timer is due or a commit writes one due sooner.

:class:`SweepLoop` runs the sweep and nothing else; ``gengbao serve`` runs it
beside the notification dispatch loop (:class:`engine.api.loops.ServeLoops`),
``gengbao worker`` alone in the foreground (:meth:`SweepLoop.run_until`).

One thread sweeps, then plans its next wake: the earliest due time of a
pending timer or of a failed timer's next attempt
(:meth:`TimerService.next_due`, one indexed query), but never later than
*interval_seconds* from now — the safety net for timers written by other
processes, which no signal reaches (:mod:`engine.timers.wake`).  It sleeps
on a :class:`~engine.timers.wake.DueWakeup`, which a commit in this process
sets when it wrote a timer due before the planned wake (an event entering a
state with a deadline, ``timers retry``, ``timers recompute``).  So a timer
fires milliseconds after it falls due instead of up to an interval later, and
an idle loop asks the database once per interval, as the polling loop did.
When a due timer could not be fired (its case is held by an event in flight
or another sweeper, or the sweep failed), the loop tries again after a short
backoff that doubles up to the interval.

The first sweep runs at start, so timers that fell due while no process was
running fire then (catch-up), oldest first.  A sweep is never run twice at
once in a process, and no wake-up is lost while one runs: a commit during a
sweep wakes the loop again right after it.  Across processes, the claims in
:mod:`engine.timers.sweep` make each timer fire once.

``follow_due=False`` is the old loop — a sweep every *interval_seconds*, no
wake-ups — kept for ``bench/timers.py``'s baseline.

APScheduler keeps the time: the round is one job of a ``BackgroundScheduler``
on an interval trigger (the safety net), re-armed after each round for its
planned wake (``next_run_time``) and moved to "now" by a wake-up.  A job
cannot be re-armed while it runs without racing its own ``max_instances``
guard, so a wake-up that arrives during a round is not sent to the scheduler:
the round sees it when it ends and runs again at once; only between rounds
does a wake-up move the job (two instances allowed, so a round that is just
returning never makes the scheduler skip the next).
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable, Collection

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from engine.timers.sweep import TimerService
from engine.timers.wake import DueWakeup

__all__ = ["SweepLoop", "TimerLoop"]

log = logging.getLogger(__name__)

RETRY_HELD_SECONDS = 0.05  # first backoff when a due timer could not be fired
JOB = "gengbao-sweep"


class SweepLoop:
    """The timer sweep, run when the next timer is due (at the latest every
    *interval_seconds*); *on_wait* is told each planned wake and the seconds it will
    sleep for (tests, the bench)."""

    def __init__(
        self,
        timers: TimerService,
        interval_seconds: float = 5.0,
        *,
        after_sweep: Callable[[int], None] | None = None,
        on_wait: Callable[[dt.datetime, float], None] | None = None,
        follow_due: bool = True,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be positive, not {interval_seconds}")
        self.timers = timers
        self.interval = interval_seconds
        self.after_sweep = after_sweep
        self.on_wait = on_wait
        self.follow_due = follow_due
        self.wakeup = DueWakeup(timers.engine)
        self.sweeps = 0
        self._backoff = 0.0  # seconds; 0 while due timers get fired
        self._stop = threading.Event()
        self._scheduler: BackgroundScheduler | None = None
        self._state = threading.Lock()  # guards _busy and the job's next run time
        self._busy = False  # a round is running

    # -- one round ----------------------------------------------------------
    def sweep(self, at: dt.datetime | None = None) -> int:
        """One sweep (everything due at *at*, default the clock); the number of timers
        fired, failed or found stale; -1 if the sweep itself failed."""
        try:
            fired = self.timers.run_due(at)
        except Exception:  # keep the loop alive; the next sweep retries
            log.exception("timer sweep failed")
            return -1
        self.sweeps += 1
        for f in fired:
            log.info(
                "timer %s %s case %s (%s) late %.0fs: %s",
                f.timer_id,
                f.kind,
                f.case,
                f.state,
                f.late_seconds,
                f.outcome,
            )
        if self.after_sweep is not None:
            self.after_sweep(len(fired))
        return len(fired)

    def next_wake(self, fired: int, at: dt.datetime | None = None) -> dt.datetime:
        """When to sweep next, after the sweep at *at* (default: now) that handled *fired*
        timers (-1: it failed): the next due time, at most an interval from now — at
        once for a timer that fell due while the sweep ran.  After a failed sweep, or
        when a timer that was due at *at* is still there (held by another transaction),
        a backoff: doubling while such sweeps fire nothing, at most the interval."""
        now = self.timers.clock.now()
        at = now if at is None else at
        latest = now + dt.timedelta(seconds=self.interval)
        if not self.follow_due:
            return latest
        due = None
        if fired >= 0:
            try:
                due = self.timers.next_due()
            except Exception:
                log.exception("reading the next due timer failed")
                fired = -1
        if fired < 0 or (due is not None and due <= at):
            grown = self._backoff * 2 if fired <= 0 else 0.0
            self._backoff = min(self.interval, max(RETRY_HELD_SECONDS, grown))
            return now + dt.timedelta(seconds=self._backoff)
        self._backoff = 0.0
        return latest if due is None else min(due, latest)

    def wake(self) -> None:
        """Sweep now (e.g. after moving a test's fake clock)."""
        self.wakeup.set()

    def _round(self) -> None:
        """The scheduler's job: sweep, plan the next wake, re-arm the job for it; again
        at once while a wake-up arrived during the round."""
        with self._state:
            if self._busy or self._stop.is_set():
                return
            self._busy = True
        try:
            while True:
                seconds = self._once()
                with self._state:  # checked and released together: no wake-up slips between
                    if self._stop.is_set() or not (self.follow_due and self.wakeup.is_set()):
                        self._busy = False
                        self._arm(seconds)
                        return
        except BaseException:
            with self._state:
                self._busy = False
                self._arm(self.interval)
            raise

    def _once(self) -> float:
        at = self.timers.clock.now()
        self.wakeup.begin(at)  # from here on, a commit writing a timer due before at wakes
        fired = self.sweep(at)
        wake_at = self.next_wake(fired, at)
        if self.follow_due:
            self.wakeup.plan(wake_at)  # (wakes at once for a timer committed meanwhile)
        seconds = max(0.0, min(self.interval, (wake_at - self.timers.clock.now()).total_seconds()))
        if self.on_wait is not None:
            self.on_wait(wake_at, seconds)
        return seconds

    def _arm(self, seconds: float) -> None:
        """Run the job in *seconds* (the caller holds ``_state``)."""
        if self._scheduler is None or self._stop.is_set():
            return
        when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
        self._scheduler.modify_job(JOB, next_run_time=when)

    def _poke(self) -> None:
        """A wake-up: run the job now, unless a round runs (it will see the wake-up)."""
        with self._state:
            if not self._busy:
                self._arm(0.0)

    # -- running --------------------------------------------------------------
    def start(self) -> None:
        """Run in the scheduler's background threads (inside ``gengbao serve``)."""
        with self._state:
            if self._scheduler is not None:
                return
            self._stop.clear()
            scheduler = BackgroundScheduler(
                executors={"default": ThreadPoolExecutor(2)},
                job_defaults={"coalesce": True, "max_instances": 2, "misfire_grace_time": None},
                timezone=dt.UTC,
            )
            scheduler.add_job(
                self._round,
                IntervalTrigger(seconds=self.interval),
                id=JOB,
                name="timer sweep",
                next_run_time=dt.datetime.now(dt.UTC),  # the first sweep at start: catch-up
            )
            if self.follow_due:
                self.wakeup.on_set = self._poke
            scheduler.start()
            self._scheduler = scheduler

    def run_until(self, stop_signals: Collection[signal.Signals]) -> signal.Signals:
        """Run in the foreground (``gengbao worker``) until one of *stop_signals*
        arrives; a sweep in flight finishes and commits first.  Returns the signal.

        The signals are blocked in this thread before the loop starts its
        threads (which inherit the mask) and awaited with :func:`signal.sigwait`:
        nothing is ever raised into running code.  An exception raised from a
        signal handler instead could land anywhere — in the middle of a sweep's
        commit, or in code that catches ``BaseException`` and logs it, and the worker
        would run on, deaf to that SIGTERM.  A signal
        that arrives before the wait is kept pending."""
        wanted = set(stop_signals)
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
        try:
            self.start()
            got = signal.Signals(signal.sigwait(wanted))
        finally:
            self.stop()
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        return got

    def stop(self) -> None:
        """Stop; a sweep in flight finishes and commits first."""
        self._stop.set()
        self.wakeup.on_set = None
        with self._state:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=True)

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running


TimerLoop = SweepLoop  # its name until the sweep and the dispatch loop were told apart
