"""``gengbao tasks``: a person's open tasks (我的待办), most urgent first."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.common import Context, Failure, add_json, emit

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    p = commands.add_parser(
        "tasks",
        help="a person's tasks: open cases they can act on now, most urgent first",
        description="Every open case where PERSON_ID can act now (a transition of the state "
        "permits a role they hold on the case's chain), is the assignee, signs a countersign, "
        "accepts a transfer or answers a supervision; overdue first, then by deadline.",
    )
    p.add_argument("--actor", required=True, metavar="PERSON_ID")
    p.add_argument("--overdue", action="store_true", help="only tasks past their deadline")
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    add_json(p)
    p.set_defaults(handler=list_tasks)


def list_tasks(args: argparse.Namespace, ctx: Context) -> int:
    if args.limit < 1:
        raise Failure("--limit must be 1 or more", 2)
    found = ctx.app().tasks.for_actor(args.actor, overdue_only=args.overdue, limit=args.limit)
    if args.json:
        emit([t.as_dict() for t in found])
        return 0
    if not found:
        print(f"no tasks for {args.actor}")
    for t in found:
        if t.seconds_left is None:
            when = "no deadline"
        elif t.seconds_left < 0:
            when = f"OVERDUE {_span(-t.seconds_left)} (due {t.deadline_local})"
        else:
            when = f"due {t.deadline_local} (in {_span(t.seconds_left)})"
        who = f"  assignee {t.assignee}" if t.assignee else ""
        triggers = ", ".join(a["trigger"] for a in t.actions)
        print(
            f"{t.case_id}  {t.kind:<11} {t.state} ({t.state_title})  {t.unit_name}  "
            f"{when}{who}  [{triggers}]"
        )
    return 0


def _span(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"
