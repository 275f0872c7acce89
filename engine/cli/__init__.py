"""The ``gengbao`` command line.

Each command group lives in its own module and registers its sub-commands
with :func:`add_commands`.  Every command accepts ``--json``; the global
``--now ISO8601`` runs it on a fixed clock (simulations, tests, replays) and
``--config FILE`` picks the settings file.  Errors go to stderr: exit 1 for a
refused request or invalid input, 2 for usage errors.  A SQLAlchemy error that
escaped a service unmapped is mapped here by the services' own rules
(:func:`engine.store.storage_error_for`).  No traceback reaches a user unless
``GENGBAO_DEBUG=1`` is set.

The parser is built from every command module before one command runs, so a
command module imports only what declares its arguments; each handler imports
the services it calls when it runs (``gengbao --help`` loads no storage, no
HTTP stack, no scheduler, no templates: ``tests/test_cli_imports.py``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import traceback
from collections.abc import Sequence

from engine.cli import (
    board,
    case,
    db,
    definitions,
    grid,
    notifications,
    patrols,
    person,
    report,
    serve,
    tasks,
    timers,
    token,
    workflow,
)
from engine.cli.common import Context, Failure
from engine.errors import ConfigError, GengbaoError

__all__ = ["build_parser", "main"]

_GROUPS = (
    definitions,
    db,
    grid,
    workflow,
    case,
    tasks,
    board,
    timers,
    notifications,
    serve,
    token,
    person,
    patrols,
    report,
)


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


def build_parser() -> argparse.ArgumentParser:
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
    for group in _GROUPS:
        group.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
