"""``gengbao timers run-due|recompute``, ``gengbao worker`` and ``gengbao simulate``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from engine.cli.common import Context, Failure, add_json, emit
from engine.settings import load_settings
from engine.simulate import load_scenario, simulate
from engine.timers import TimerLoop

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    timers = commands.add_parser("timers", help="deadlines, reminders, escalations").add_subparsers(
        dest="timers_command", metavar="COMMAND", required=True
    )
    p = timers.add_parser("run-due", help="fire everything due now (or at --now), once")
    add_json(p)
    p.set_defaults(handler=run_due)
    _add_recompute(timers)

    p = commands.add_parser("worker", help="run the timer loop alone, in the foreground")
    p.add_argument("--interval", type=float, default=5.0, metavar="SECONDS")
    p.set_defaults(handler=worker)
    _add_simulate(commands)


def run_due(args: argparse.Namespace, ctx: Context) -> int:
    fired = ctx.app().timers.run_due()
    if args.json:
        emit([f.as_dict() for f in fired])
        return 0
    for f in fired:
        rung = f" rung {f.rung + 1}" if f.rung is not None else ""
        print(
            f"{f.fired_at:%Y-%m-%d %H:%M}Z  {f.kind}{rung:<8} case {f.case} ({f.state})  "
            f"due {f.due:%Y-%m-%d %H:%M}Z  {f.outcome}  {f.detail}"
        )
    print(f"{len(fired)} timer(s) fired")
    return 0


def _add_recompute(timers: Any) -> None:
    p = timers.add_parser(
        "recompute",
        help="recompute pending working-day timers from the current calendar "
        "(after config/calendars/ changed)",
    )
    p.add_argument("--dry-run", action="store_true", help="show what would move; change nothing")
    add_json(p)
    p.set_defaults(handler=recompute)


def recompute(args: argparse.Namespace, ctx: Context) -> int:
    result = ctx.app().recompute.run(dry_run=args.dry_run)
    if args.json:
        emit(result.as_dict())
    else:
        for m in result.moved:
            rung = f" rung {m.rung + 1}" if m.rung is not None else ""
            new = f"{m.new:%Y-%m-%d %H:%M}Z" if m.new is not None else "cancelled"
            print(f"{m.case}  {m.state}  {m.kind}{rung}  {m.old:%Y-%m-%d %H:%M}Z → {new}")
        verb = "would move" if result.dry_run else "moved"
        print(
            f"{len(result.moved)} timer(s) {verb} in {result.cases_moved} case(s) "
            f"({result.checked} open case(s) with pending timers checked)"
            + ("; dry run: nothing written" if result.dry_run else "")
        )
    for f in result.failed:
        print(f"gengbao: error: case {f.case}: {f.error}", file=sys.stderr)
    if result.failed:
        raise Failure(f"{len(result.failed)} case(s) not recomputed; the others were")
    return 0


def worker(args: argparse.Namespace, ctx: Context) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = ctx.app()
    print(f"gengbao worker {app.timers.worker}: sweeping every {args.interval:g}s; Ctrl-C stops")
    TimerLoop(app.timers, args.interval).run_forever()
    return 0


def _add_simulate(commands: Any) -> None:
    p = commands.add_parser(
        "simulate", help="run a scenario on a virtual clock and print its timeline"
    )
    p.add_argument(
        "workflow",
        metavar="WORKFLOW",
        help="a workflow id (from the workflows folder) or a workflow file",
    )
    p.add_argument("--scenario", required=True, metavar="FILE")
    add_json(p)
    p.set_defaults(handler=simulate_command)


def simulate_command(args: argparse.Namespace, ctx: Context) -> int:
    settings = load_settings(ctx.config)
    file = Path(args.workflow)
    if not file.is_file():
        file = Path(settings.workflows_dir) / f"{args.workflow}.yaml"
        if not file.is_file():
            raise Failure(f"no workflow {args.workflow!r}: not a file, and no {file}")
    lines = simulate(settings, file, load_scenario(args.scenario))
    if args.json:
        emit([line.as_dict() for line in lines])
    else:
        for line in lines:
            print(line.render(settings.timezone))
    return 0
