"""``gengbao board``: the overdue board (超期预警) of a person — open, due-soon and overdue
cases per unit of their scope — and, with ``--bucket``, the cases behind one cell."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.common import Context, Failure, add_json, emit

__all__ = ["add_commands"]

# engine.cases.board.BUCKETS, written out: the parser imports no service (test_cli_imports)
BUCKETS = ("open", "due_soon", "overdue")


def add_commands(commands: Any) -> None:
    p = commands.add_parser(
        "board",
        help="the overdue board: open, due-soon and overdue cases per unit of a person's scope",
        description="For every unit PERSON_ID sees (where they hold a role, and below): the "
        "open cases of its subtree, those due soon (within the state's reminder window, or "
        "board.due_soon) and those overdue. With --bucket, the cases behind one cell.",
    )
    p.add_argument("--actor", required=True, metavar="PERSON_ID", help="whose board")
    p.add_argument("--workflow", metavar="WORKFLOW", help="only cases of this workflow")
    p.add_argument("--state", metavar="STATE", help="only cases in this state")
    p.add_argument("--unit", metavar="UNIT_CODE", help="this unit and everything below it")
    p.add_argument("--bucket", choices=BUCKETS, help="list the cases of this bucket under --unit")
    p.add_argument("--limit", type=int, default=50, help="cases per page (with --bucket)")
    p.add_argument("--cursor", metavar="CASE_ID", help="next_cursor of the previous page")
    add_json(p)
    p.set_defaults(handler=show_board)


def show_board(args: argparse.Namespace, ctx: Context) -> int:
    from engine.cases.board import BoardFilter

    board = ctx.app().board
    wanted = BoardFilter(workflow=args.workflow, state=args.state, unit=args.unit)
    if args.bucket is not None:
        if args.unit is None:
            raise Failure("--bucket needs --unit: the cell is a unit and a bucket", 2)
        page = board.cases(
            args.unit, args.bucket, wanted, viewer=args.actor, limit=args.limit, after=args.cursor
        )
        if args.json:
            emit(page.as_dict())
            return 0
        if not page.items:
            print(f"no {args.bucket} cases under {args.unit}")
        for c in page.items:
            due = c.deadline_local or "no deadline"
            print(f"{c.id}  {c.bucket:<8} {c.state} ({c.state_title})  {c.unit_name}  {due}")
        if page.next_cursor:
            print(f"more: --cursor {page.next_cursor}")
        return 0
    view = board.board(wanted, viewer=args.actor)
    if args.json:
        emit(view.as_dict())
        return 0
    from engine.tabular import Cell, text_table

    rows: list[list[Cell]] = [
        ["  " * u.depth + u.name, u.unit, u.open, u.due_soon, u.overdue] for u in view.units
    ]
    print(text_table(("单位", "编码", "在办", "临期", "超期"), rows, left=2))
    return 0
