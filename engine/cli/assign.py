"""``gengbao case ack|assign``: acknowledge (签收) a case, or assign it to a person."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from engine.cli.common import Context, add_json, emit

if TYPE_CHECKING:
    from engine.cases.records import CaseView

__all__ = ["add_case_commands", "print_assignment"]


def add_case_commands(case: Any) -> None:
    p = case.add_parser(
        "ack",
        help="acknowledge a case (签收): become its assignee in its current state",
    )
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("--actor", required=True, metavar="PERSON_ID")
    p.add_argument("--key", metavar="IDEMPOTENCY_KEY")
    add_json(p)
    p.set_defaults(handler=case_ack)

    p = case.add_parser("assign", help="assign (or reassign) a case to a person who can act")
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("--to", required=True, metavar="PERSON_ID", help="the new assignee")
    p.add_argument("--actor", required=True, metavar="PERSON_ID", help="the assigner")
    p.add_argument("--key", metavar="IDEMPOTENCY_KEY")
    add_json(p)
    p.set_defaults(handler=case_assign)


def print_assignment(assignment: dict[str, Any] | None, ctx: Context) -> None:
    """The ``assignee`` line of ``case show`` (and of an ack or assign)."""
    if assignment is None:
        return
    if assignment["assignee"] is None:
        due = assignment.get("deadline_at")
        print(f"  assignee: none yet (acknowledge by {ctx.local(due)})")
        return
    how = (
        f"acknowledged {ctx.local(assignment['acked_at'])}"
        if assignment["acked_at"]
        else f"assigned by {assignment['assigned_by']}, not acknowledged yet"
    )
    print(f"  assignee: {assignment['assignee']} ({how})")


def _print(view: CaseView, as_json: bool, ctx: Context) -> None:
    if as_json:
        emit(view.as_dict())
        return
    print(
        f"{view.id}  {view.state} ({view.state_title})  unit {view.unit}  revision {view.revision}"
    )
    print_assignment(view.extra.get("assignment"), ctx)


def case_ack(args: argparse.Namespace, ctx: Context) -> int:
    view = ctx.app().assignments.ack(args.case_id, args.actor, key=args.key)
    _print(view, args.json, ctx)
    return 0


def case_assign(args: argparse.Namespace, ctx: Context) -> int:
    view = ctx.app().assignments.assign(args.case_id, args.to, args.actor, key=args.key)
    _print(view, args.json, ctx)
    return 0
