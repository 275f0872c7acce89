"""The ``gengbao`` command line.

Each command group lives in its own module and registers its sub-commands
with :func:`add_commands`.  Every command accepts ``--json``; the global
``--now ISO8601`` runs it on a fixed clock (simulations, tests, replays) and
``--config FILE`` picks the settings file.  Errors go to stderr: exit 1 for a
refused request or invalid input, 2 for usage errors.  A SQLAlchemy error that
escaped a service unmapped is mapped here by the services' own rules
(:func:`engine.store.storage_error_for`).  No traceback reaches a user unless
``GENGBAO_DEBUG=1`` is set.

A run imports the one command module that registers the command it names
(:data:`GROUPS`); ``--help`` and a mistyped command build the parser from every
module.  A command module imports only what declares its arguments; each handler
imports the services it calls when it runs (``gengbao --help`` loads no storage, no
HTTP stack, no scheduler, no templates: ``tests/test_cli_imports.py``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from engine.cli.common import Context, Failure
from engine.errors import ConfigError, GengbaoError

__all__ = ["GROUPS", "build_parser", "main"]

# Each command module and the top-level commands it registers, in the order of
# ``gengbao --help``.  A run names one command, so only its module is imported
# (``tests/test_cli_imports.py`` checks this table against what each module registers).
GROUPS: dict[str, tuple[str, ...]] = {
    "definitions": ("validate", "graph", "schema"),
    "db": ("db",),
    "grid": ("grid",),
    "workflow": ("workflow",),
    "case": ("case",),
    "tasks": ("tasks",),
    "board": ("board",),
    "timers": ("timers", "worker", "simulate"),
    "notifications": ("notifications",),
    "serve": ("serve",),
    "token": ("token",),
    "person": ("person",),
    "patrols": ("patrol", "survey"),
    "report": ("report",),
}
_GLOBAL_WITH_VALUE = ("--config", "--now")


def _group(name: str) -> ModuleType:
    return importlib.import_module(f"engine.cli.{name}")


def _command_named(argv: Sequence[str]) -> str | None:
    """The command *argv* runs (its first word after the global options), or None
    when it names none (``--help``, a mistake: the whole parser answers those)."""
    words = iter(argv)
    for word in words:
        if word in _GLOBAL_WITH_VALUE:
            next(words, None)
        elif not word.startswith("-"):
            return word
        elif not word.startswith(tuple(f"{o}=" for o in _GLOBAL_WITH_VALUE)):
            return None
    return None


def _parse_now(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date-time: {text!r} (e.g. 2026-09-21T09:00:00+08:00)"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"--now needs a UTC offset, e.g. {text}+08:00")
    return moment.astimezone(dt.UTC)


def _driver_error() -> type[Exception] | tuple[()]:
    """SQLAlchemy's root error, once a command has loaded SQLAlchemy; before that no
    such error can be raised, and ``except ()`` matches nothing."""
    if "sqlalchemy" not in sys.modules:
        return ()
    from engine.store import DRIVER_ERROR

    return DRIVER_ERROR


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the module registering *command* alone."""
    parser = argparse.ArgumentParser(
        prog="gengbao",
        description="gengbao: farmland-protection workflows on a three-level grid",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="settings file (default: config/gengbao.yaml)"
    )
    parser.add_argument(
        "--now",
        metavar="ISO8601",
        type=_parse_now,
        help="run on a fixed clock at this instant (simulations, tests, replays)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = [g for g, names in GROUPS.items() if command in names] or list(GROUPS)
    for name in wanted:
        _group(name).add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_named(words))
    args = parser.parse_args(words)
    context = Context(config=args.config, now=args.now)
    try:
        result: int = args.handler(args, context)
        return result
    except Failure as exc:
        print(f"gengbao: error: {exc}", file=sys.stderr)
        return exc.status
    except GengbaoError as exc:
        located = exc.details.get("problems") if isinstance(exc, ConfigError) else None
        if located:  # each line already says FILE:LINE:COL: error: …
            print("\n".join(located), file=sys.stderr)
        else:
            print(f"gengbao: error: {exc}", file=sys.stderr)
        return 1
    except _driver_error() as exc:
        from engine.store import DRIVER_ERROR, storage_error_for

        assert isinstance(exc, DRIVER_ERROR)
        if os.environ.get("GENGBAO_DEBUG"):
            traceback.print_exc()
        print(f"gengbao: error: {storage_error_for(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``gengbao … | head``): stop quietly, as a
        # process killed by SIGPIPE would, and keep the exit flush from failing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:  # the last line of defence: no traceback for users
        if os.environ.get("GENGBAO_DEBUG"):
            traceback.print_exc()
        print(f"gengbao: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        context.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
