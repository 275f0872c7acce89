"""``gengbao timers run-due|list|retry|recompute``, ``gengbao worker`` and ``gengbao simulate``."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

from engine.cli.common import (
    Context,
    Failure,
    add_choice,
    add_json,
    blocked_signals,
    configure_logging,
    emit,
)

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    timers = commands.add_parser("timers", help="deadlines, reminders, escalations").add_subparsers(
        dest="timers_command", metavar="COMMAND", required=True
    )
    p = timers.add_parser("run-due", help="fire everything due now (or at --now), once")
    add_json(p)
    p.set_defaults(handler=run_due)
    _add_list_and_retry(timers)
    _add_recompute(timers)

    p = commands.add_parser("worker", help="run the timer loop alone, in the foreground")
    p.add_argument("--interval", type=float, default=5.0, metavar="SECONDS")
    p.add_argument("--verbose", "-v", action="store_true", help="log every sweep and migration")
    p.set_defaults(handler=worker)
    _add_simulate(commands)


def run_due(args: argparse.Namespace, ctx: Context) -> int:
    from engine.timers.rungs import level_label

    fired = ctx.app().timers.run_due()
    if args.json:
        emit([f.as_dict() for f in fired])
        return 0
    for f in fired:
        print(
            f"{ctx.local(f.fired_at)}  {f.kind}{level_label(f.rung):<9} case {f.case} ({f.state})  "
            f"due {ctx.local(f.due)}  {f.outcome}  {f.detail}"
        )
    failed = sum(1 for f in fired if f.outcome == "failed")
    print(f"{len(fired) - failed} timer(s) fired" + (f", {failed} failed" if failed else ""))
    return 0


def _statuses() -> Collection[str]:
    from engine.timers.ledger import STATUSES

    return STATUSES


def _add_list_and_retry(timers: Any) -> None:
    p = timers.add_parser("list", help="timers (default: pending and failed), oldest due first")
    add_choice(p, "--status", choices=_statuses, help="only timers with this status")
    p.add_argument("--case", metavar="CASE_ID", help="only this case's timers")
    p.add_argument("--limit", type=int, default=100, metavar="N")
    add_json(p)
    p.set_defaults(handler=timers_list)

    p = timers.add_parser("retry", help="re-arm a failed timer: it fires at the next sweep")
    p.add_argument("timer_id", type=int, metavar="ID")
    add_json(p)
    p.set_defaults(handler=timers_retry)


def timers_list(args: argparse.Namespace, ctx: Context) -> int:
    if args.limit < 1:
        raise Failure(f"--limit must be at least 1, not {args.limit}", status=2)
    found = ctx.app().timers.list_timers(args.status, args.case, args.limit)
    if args.json:
        emit(found)
        return 0
    for t in found:
        print(_timer_line(t, ctx))
    print(f"{len(found)} timer(s)")
    return 0


def _timer_line(t: dict[str, Any], ctx: Context) -> str:
    from engine.timers.rungs import level_label

    owner = f"case {t['case']}" if t["case"] is not None else f"rule {t['rule']}"
    what = f"{t['kind']}{level_label(t['rung'])}"
    line = (
        f"{t['id']:>6}  {t['status']:<9} {what}  {owner} ({t['state']})  due {ctx.local(t['due'])}"
    )
    if t["status"] == "failed":
        then = ctx.local(t["next_attempt_at"]) if t["next_attempt_at"] else "no more attempts"
        line += f"\n        attempts {t['attempts']}, next {then}: {t['last_error']}"
    elif t["detail"]:
        line += f"  {t['detail']}"
    return line


def timers_retry(args: argparse.Namespace, ctx: Context) -> int:
    rearmed = ctx.app().timers.retry(args.timer_id)
    if args.json:
        emit(rearmed)
    else:
        print(f"timer {rearmed['id']} re-armed: it fires at the next sweep")
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
    from engine.timers.rungs import level_label

    result = ctx.app().recompute.run(dry_run=args.dry_run)
    if args.json:
        emit(result.as_dict())
    else:
        for m in result.moved:
            new = ctx.local(m.new) if m.new is not None else "cancelled"
            print(f"{m.case}  {m.state}  {m.kind}{level_label(m.rung)}  {ctx.local(m.old)} → {new}")
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
    from engine.timers import SweepLoop

    configure_logging(verbose=args.verbose)
    app = ctx.app()
    stops = {signal.SIGTERM, signal.SIGINT}
    with blocked_signals(stops):  # before the start line: from then on SIGTERM is clean
        print(
            f"gengbao worker {app.timers.worker}: sweeping every {args.interval:g}s; "
            "Ctrl-C or SIGTERM stops",
            flush=True,
        )
        SweepLoop(app.timers, args.interval).run_until(stops)  # a sweep in flight completes
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
    from engine.settings import load_settings
    from engine.simulate import load_scenario, simulate

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
