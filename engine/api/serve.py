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

``--workers N`` (PostgreSQL only): the process prepares the database as above,
binds the listening socket, and forks N workers that accept on it, each with
its own :class:`~engine.app.App` (its own connection pool) and its own timer
and dispatch loops — exactly N ``gengbao serve`` processes sharing one port:
the sweep's and the dispatcher's ``SKIP LOCKED`` claims already divide that
work between processes, so no worker is special and losing one stops nothing.
The parent only supervises: SIGTERM or SIGINT is passed on to every worker as
SIGTERM (each shuts down gracefully, as above) and the parent exits 0 once all
exited 0.  A worker killed by a signal (``kill -9``, the OOM killer) is
replaced; a worker that exits on its own with a failure (it could not start)
stops the others, and the parent exits 1.  On SQLite ``--workers`` above 1 is
refused: SQLite has one writer at a time, so more processes only queue on its
lock, and its wake-ups do not cross processes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from engine.api.app import create_api
from engine.api.loops import ServeLoops
from engine.api.options import ApiOptions, ServeOptions
from engine.app import App
from engine.errors import ConfigError
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


def serve(app: App, options: ServeOptions, *, access_log: bool = True, workers: int = 1) -> int:
    """Run until SIGTERM or SIGINT; 0 after a clean shutdown.  With *workers* above 1,
    supervise that many worker processes (PostgreSQL only; see the module docstring)."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")
    if workers > 1 and app.engine.dialect.name != "postgresql":
        raise ConfigError(
            f"--workers {workers} needs PostgreSQL: SQLite has one writer at a time, "
            "so run one worker (the default)"
        )
    prepare(app)
    if workers == 1:
        return _run(app, options, access_log=access_log)
    return _Supervisor(app, options, workers, access_log=access_log).run()


def _run(
    app: App,
    options: ServeOptions,
    *,
    access_log: bool,
    sockets: list[socket.socket] | None = None,
) -> int:
    """One server: the API, the loops; until SIGTERM or SIGINT (0 after a clean shutdown)."""
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
        server.run(sockets=sockets)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        log.info("stopped by signal %s", ", ".join(signal.Signals(s).name for s in received))
    return 0 if server.started or received else 1


class _Supervisor:
    """The parent of ``--workers N``: binds the socket, forks the workers, passes signals on."""

    def __init__(self, app: App, options: ServeOptions, workers: int, *, access_log: bool):
        self.app = app
        self.options = options
        self.workers = workers
        self.access_log = access_log
        self.children: dict[int, int] = {}  # pid → worker number
        self.stopping = False
        self.failed = False
        self.received: list[int] = []

    def run(self) -> int:
        family = socket.AF_INET6 if ":" in self.options.host else socket.AF_INET
        # proto IPPROTO_TCP, as asyncio's own create_server makes it: asyncio sets
        # TCP_NODELAY only on accepted sockets whose proto says TCP (without it, Nagle and
        # delayed ACKs added ~40 ms to every request).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.options.host, self.options.port))
            sock.listen(2048)
        except OSError as error:
            sock.close()
            raise ConfigError(
                f"cannot listen on {self.options.host}:{self.options.port}: {error.strerror}"
            ) from error
        self.app.close()  # no pooled connection of this process crosses a fork
        watched = (signal.SIGTERM, signal.SIGINT)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in watched}
        log.info(
            "gengbao serve: %d workers on http://%s:%d (parent %d)",
            self.workers,
            self.options.host,
            self.options.port,
            os.getpid(),
        )
        try:
            for number in range(1, self.workers + 1):
                self._start(number, sock)
            self._wait(sock)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            sock.close()
        if self.received:
            names = ", ".join(signal.Signals(s).name for s in self.received)
            log.info("stopped by signal %s", names)
        return 1 if self.failed else 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
        self._stop_all()

    def _stop_all(self) -> None:
        self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):  # SIGTERM even for SIGINT:
                os.kill(pid, signal.SIGTERM)  # uvicorn forces an exit on a second SIGINT

    def _start(self, number: int, sock: socket.socket) -> None:
        watched = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, watched)  # no signal between fork and record
        try:
            pid = os.fork()
            if pid == 0:
                self._worker(number, sock, watched)  # never returns
            self.children[pid] = number
            log.info("worker %d started (pid %d)", number, pid)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, watched)

    def _worker(self, number: int, sock: socket.socket, watched: set[signal.Signals]) -> None:
        status = 1
        try:
            for sig in watched:
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, watched)
            app = App(self.app.settings, self.app.clock, migrate=False)
            try:
                status = _run(app, self.options, access_log=self.access_log, sockets=[sock])
            finally:
                app.close()
        except BaseException:
            log.exception("worker %d failed", number)
        finally:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    def _wait(self, sock: socket.socket) -> None:
        while self.children:
            try:
                pid, wait_status = os.wait()
            except ChildProcessError:  # pragma: no cover - every child is in self.children
                return
            number = self.children.pop(pid, None)
            if number is None:
                continue
            code = os.waitstatus_to_exitcode(wait_status)
            if self.stopping:
                if code != 0:
                    log.warning("worker %d (pid %d) exited %d", number, pid, code)
                    self.failed = True
                continue
            if code < 0:  # killed by a signal: replace it
                log.warning(
                    "worker %d (pid %d) killed by %s; starting another",
                    number,
                    pid,
                    signal.Signals(-code).name,
                )
                self._start(number, sock)
                continue
            log.error("worker %d (pid %d) exited %d; stopping the others", number, pid, code)
            self.failed = True
            self._stop_all()
