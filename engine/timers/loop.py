"""APScheduler 3 drives the sweep: one interval job, never one job per deadline.

*companions* are other background loops of the process (``gengbao serve``
passes the notification dispatch loop, which runs continuously rather than
as an interval job): they start and stop with the sweep.

The job is ``max_instances=1`` and ``coalesce=True``: a slow sweep is never
run twice at once in a process, and missed runs collapse into one.  Its first
run is immediate, so timers that fell due while no process was running fire
at start (catch-up), oldest first.  Across processes, the claims in
:mod:`engine.timers.sweep` make each timer fire once.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from apscheduler.schedulers.background import BackgroundScheduler

from engine.timers.sweep import TimerService

__all__ = ["TimerLoop"]

log = logging.getLogger(__name__)


class Companion(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    @property
    def running(self) -> bool: ...


class TimerLoop:
    def __init__(
        self,
        timers: TimerService,
        interval_seconds: float = 5.0,
        *,
        after_sweep: Callable[[int], None] | None = None,
        extra_jobs: list[tuple[Callable[[], Any], float]] | None = None,
        companions: Sequence[Companion] = (),
    ) -> None:
        self.timers = timers
        self.interval = interval_seconds
        self.after_sweep = after_sweep
        self.extra_jobs = extra_jobs or []
        self.companions = list(companions)
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
        for i, (job, seconds) in enumerate(self.extra_jobs):
            scheduler.add_job(
                job,
                "interval",
                seconds=seconds,
                id=f"job{i}",
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
        for companion in self.companions:
            companion.start()

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
        for companion in self.companions:
            companion.stop()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)

    @property
    def running(self) -> bool:
        scheduled = self.scheduler is not None and bool(self.scheduler.running)
        return scheduled and all(c.running for c in self.companions)
