"""What every CLI command shares: the context (settings, clock, store) and output.

Nothing here imports more than the standard library at module level: the parser
of every command is built from this and the command modules before a command
runs, so ``gengbao --help`` and ``gengbao validate`` never pay for the storage,
the HTTP stack or the scheduler (``tests/test_cli_imports.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import signal
import sys
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from engine.app import App
    from engine.grid.visibility import Viewer

__all__ = [
    "Choices",
    "Context",
    "Failure",
    "add_choice",
    "add_json",
    "add_viewer",
    "blocked_signals",
    "configure_logging",
    "emit",
    "iso_date",
    "local_time",
    "viewer_of",
    "write_output",
]


class Failure(Exception):
    """A CLI-level failure with its exit status (1 refused, 2 usage)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Context:
    config: str | None = None
    now: dt.datetime | None = None
    _closers: list[Any] = field(default_factory=list)
    _app: App | None = None

    def app(self, *, sync: bool = True) -> App:
        """The application on the configured database (built once per command)."""
        if self._app is None:
            from engine.app import App
            from engine.clock import FixedClock, SystemClock
            from engine.settings import load_settings

            clock = FixedClock(self.now) if self.now is not None else SystemClock()
            self._app = App(load_settings(self.config), clock)
            self.on_close(self._app.close)
            if sync:
                self._app.sync_workflows()
        return self._app

    def local(self, moment: dt.datetime | str | None, *, seconds: bool = False) -> str:
        """*moment* as people read it: in the settings' time zone (storage is UTC)."""
        return local_time(moment, self.app(sync=False).settings.timezone, seconds=seconds)

    def on_close(self, closer: Any) -> None:
        self._closers.append(closer)

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()


def viewer_of(actor: str | None) -> Viewer:
    """``--as PERSON_ID`` → that person's view; without it the operator, who runs the
    CLI on the database itself, is the administrator and sees everything."""
    from engine.grid.visibility import ADMIN, Viewer

    return ADMIN if actor is None else Viewer(actor)


class Choices(Collection[str]):
    """An option's ``choices`` that live in a heavier module (a service's statuses):
    *load* imports and returns them the first time argparse looks, which is only
    to check a value given or to print that command's own ``--help``."""

    def __init__(self, load: Callable[[], Collection[str]]) -> None:
        self._load = load
        self._values: tuple[str, ...] | None = None

    def _get(self) -> tuple[str, ...]:
        if self._values is None:
            self._values = tuple(self._load())
        return self._values

    def __contains__(self, value: object) -> bool:
        return value in self._get()

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def add_choice(
    parser: argparse.ArgumentParser,
    *names: str,
    choices: Callable[[], Collection[str]],
    **options: Any,
) -> argparse.Action:
    """``parser.add_argument(*names, choices=…, **options)``, the choices loaded on first
    use (:class:`Choices`).  They are set once the action exists: ``add_argument``
    formats an option's choices to check its metavar, which would load them."""
    action = parser.add_argument(*names, **options)
    action.choices = Choices(choices)
    return action


def add_viewer(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as",
        dest="viewer",
        metavar="PERSON_ID",
        help="read as this person: only what they may see (default: everything)",
    )


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def emit(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2, default=_default)
    sys.stdout.write("\n")


def write_output(data: str | bytes, output: str | None) -> None:
    """Write to *output* (a file) or stdout; bytes go to stdout's binary buffer."""
    if output:
        path = Path(output)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8", newline="")
        return
    if isinstance(data, bytes):
        if sys.stdout.isatty():
            raise Failure("binary output (xlsx): give --output FILE or redirect stdout", 2)
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(data)


def configure_logging(*, verbose: bool) -> None:
    """Warnings only by default; with *verbose*, the engine's, the scheduler's and
    the migrations' progress too (every sweep, every applied migration)."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if verbose:
        for name in ("engine", "notifications", "apscheduler", "alembic"):
            logging.getLogger(name).setLevel(logging.INFO)
    else:  # "run time of job … was missed" on a busy machine: the loop catches up anyway
        logging.getLogger("apscheduler").setLevel(logging.ERROR)


@contextlib.contextmanager
def blocked_signals(signals: set[signal.Signals]) -> Iterator[None]:
    """Hold *signals* pending (not delivered) in this thread and the threads it starts,
    for a loop that waits for them with :func:`signal.sigwait`."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def local_time(moment: dt.datetime | str | None, timezone: str, *, seconds: bool = False) -> str:
    """``2026-09-18 10:00`` in *timezone*, from a datetime or ISO 8601 text; ``—`` for none."""
    if moment is None or moment == "":
        return "—"
    value = dt.datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    shown = value.astimezone(ZoneInfo(timezone))
    return f"{shown:%Y-%m-%d %H:%M:%S}" if seconds else f"{shown:%Y-%m-%d %H:%M}"


def iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date like 2026-09-18: {text!r}") from None
