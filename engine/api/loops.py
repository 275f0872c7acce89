"""What ``gengbao serve`` runs beside the HTTP API: the timer sweep and the dispatch loop.

Two loops, each named for what it runs: :class:`~engine.timers.SweepLoop` fires due
timers when they fall due (it sleeps until the next one, or until a commit writes one due sooner);
:class:`~notifications.dispatch_loop.DispatchLoop` sends notifications as soon as
their commit wakes it.  They start and stop together with the API's lifespan, and
the service is ready only while both run.
"""

from __future__ import annotations

from engine.timers import SweepLoop
from notifications.dispatch_loop import DispatchLoop

__all__ = ["ServeLoops"]


class ServeLoops:
    def __init__(self, sweep: SweepLoop, dispatch: DispatchLoop) -> None:
        self.sweep = sweep
        self.dispatch = dispatch

    def start(self) -> None:
        self.sweep.start()
        self.dispatch.start()

    def stop(self) -> None:
        """The dispatch loop first (it may still send what the last sweep queued)."""
        self.dispatch.stop()
        self.sweep.stop()

    @property
    def running(self) -> bool:
        return self.sweep.running and self.dispatch.running

    @property
    def sweeps(self) -> int:
        return self.sweep.sweeps
