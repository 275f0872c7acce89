"""APScheduler 3 drives the timer sweep: one interval job, never one job per deadline.

:class:`SweepLoop` runs the sweep and nothing else; ``gengbao serve`` runs it
beside the notification dispatch loop (:class:`engine.api.loops.ServeLoops`),
``gengbao worker`` alone in the foreground (:meth:`SweepLoop.run_until`).

The job is ``max_instances=1`` and ``coalesce=True``: a slow sweep is never
run twice at once in a process, and missed runs collapse into one.  Its first
run is immediate, so timers that fell due while no process was running fire
at start (catch-up), oldest first.  Across processes, the claims in
:mod:`engine.timers.sweep` make each timer fire once.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from engine.timers.sweep import TimerService

__all__ = ["SweepLoop", "TimerLoop"]

log = logging.getLogger(__name__)


class SweepLoop:
    """The timer sweep every *interval_seconds*; *extra_jobs* are further interval jobs
    by name (``bench/dispatch.py`` runs the dispatcher that way, as it once was)."""

    def __init__(
        self,
        timers: TimerService,
        interval_seconds: float = 5.0,
        *,
        after_sweep: Callable[[int], None] | None = None,
        extra_jobs: Mapping[str, tuple[Callable[[], Any], float]] | None = None,
    ) -> None:
        self.timers = timers
        self.interval = interval_seconds
        self.after_sweep = after_sweep
        self.extra_jobs = dict(extra_jobs or {})
        self.scheduler: BackgroundScheduler | None = None
        self.sweeps = 0

    def sweep(self) -> int:
        try:
            fired = self.timers.run_due()
        except Exception:  # keep the loop alive; the next sweep retries
            log.exception("timer sweep failed")
            return 0
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

    def _configure(self, scheduler: BackgroundScheduler) -> None:
        scheduler.add_job(
            self.sweep,
            "interval",
            seconds=self.interval,
            id="sweep",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        for name, (job, seconds) in self.extra_jobs.items():
            scheduler.add_job(
                job,
                "interval",
                seconds=seconds,
                id=name,
                max_instances=1,
                coalesce=True,
                next_run_time=datetime.now(UTC),
            )
        self.scheduler = scheduler

    def start(self) -> None:
        """Run in a background thread (inside ``gengbao serve``)."""
        scheduler = BackgroundScheduler(timezone=UTC)
        self._configure(scheduler)
        scheduler.start()

    def run_until(self, stop_signals: Collection[signal.Signals]) -> signal.Signals:
        """Run in the foreground (``gengbao worker``) until one of *stop_signals*
        arrives; a sweep in flight finishes and commits first.  Returns the signal.

        The signals are blocked in this thread before the scheduler starts its
        threads (which inherit the mask) and awaited with :func:`signal.sigwait`:
        nothing is ever raised into running code.  An exception raised from a
        signal handler instead could land anywhere — APScheduler's job submission
        catches ``BaseException`` and logs it, and the worker would run on, deaf to
        that SIGTERM.  A signal that arrives before the wait is kept pending."""
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
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)

    @property
    def running(self) -> bool:
        return self.scheduler is not None and bool(self.scheduler.running)


TimerLoop = SweepLoop  # its name until the sweep and the dispatch loop were told apart
