"""``gengbao serve``: the API (uvicorn), the timer loop and the dispatcher in one process.

At start: the workflows folder is synced (a changed file becomes a new
version), pending working-day timers are recomputed when the calendar data
changed since the last run (:mod:`engine.timers.recompute`), and the grid
file of the settings is loaded if the database holds no grid yet.  The timer
loop (an APScheduler job) sweeps when the next timer falls due, or a commit in
this process writes one due sooner, and at least every ``serve.sweep_seconds``; the dispatch
loop (:class:`~notifications.dispatch_loop.DispatchLoop`) sends as soon as a
transaction that queued notifications commits — in this process, or in any
process on PostgreSQL (``LISTEN``/``NOTIFY``) — each channel on its own
threads, and polls every ``serve.dispatch_seconds`` only as a fallback.

SIGTERM (or Ctrl-C): uvicorn stops accepting connections and waits for the
requests in flight (up to ``serve.shutdown_seconds``); then the application's
shutdown stops the loop, waiting for a sweep or a dispatch pass that is
running, so no claim is left behind; the process exits 0.  Several processes
on one PostgreSQL database share the timers and deliveries through their
claims.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from engine.api.app import create_api
from engine.api.loops import ServeLoops
from engine.api.options import ApiOptions, ServeOptions
from engine.app import App
from engine.grid.registry import GridSummary
from engine.timers import SweepLoop
from notifications.dispatch_loop import DispatchLoop

__all__ = ["prepare", "serve"]

log = logging.getLogger(__name__)

_HandledSignal = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def prepare(app: App) -> GridSummary | None:
    """Sync the workflows folder; recompute pending working-day timers if the calendar
    data changed since the last run; load the configured grid file into an empty grid."""
    for registered in app.sync_workflows():
        if registered.created or registered.activated:
            log.info(
                "workflow %s v%s: %s", registered.workflow, registered.version, registered.outcome
            )
    recomputed = app.recompute.run_if_calendar_changed()
    if recomputed is not None:
        log.info(
            "calendar data changed: %d timer(s) moved in %d of %d case(s), %d failed",
            len(recomputed.moved),
            recomputed.cases_moved,
            recomputed.checked,
            len(recomputed.failed),
        )
    grid_file = app.settings.grid_file
    if grid_file is None:
        return None
    if not app.grid.is_empty():
        return None
    summary = app.grid.load(grid_file)
    log.info("grid %s loaded: %s", grid_file, summary)
    return summary


def serve(app: App, options: ServeOptions, *, access_log: bool = True) -> int:
    """Run until SIGTERM or SIGINT; 0 after a clean shutdown."""
    prepare(app)
    dispatch = DispatchLoop(app.dispatcher, poll_seconds=options.dispatch_seconds)
    loop = ServeLoops(SweepLoop(app.timers, options.sweep_seconds), dispatch)
    api = create_api(app, loop=loop, options=ApiOptions.from_settings(app.settings))
    config = uvicorn.Config(
        api,
        host=options.host,
        port=options.port,
        lifespan="on",
        access_log=access_log,
        timeout_graceful_shutdown=int(options.shutdown_seconds),
        log_config=None,  # keep the process's logging setup
    )
    server = uvicorn.Server(config)
    # uvicorn handles SIGTERM/SIGINT while it runs and raises the signal again once it
    # has shut down; this handler receives it then, so the process ends normally (exit 0).
    received: list[int] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous: dict[int, _HandledSignal] = {
        sig: signal.signal(sig, note) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        log.info("stopped by signal %s", ", ".join(signal.Signals(s).name for s in received))
    return 0 if server.started or received else 1
