"""``gengbao case transfer|accept|return|transfers``: transfers (移送/转办) of a case."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.cli.common import Context, add_json, add_viewer, emit, viewer_of

if TYPE_CHECKING:
    from engine.cases.records import CaseView

__all__ = ["add_case_commands", "describe_pending"]


def add_case_commands(case: Any) -> None:
    """Add the transfer commands to ``gengbao case``'s subparsers."""
    p = case.add_parser(
        "transfer",
        help="transfer a case to another unit or a department (移送/转办)",
        description="Send the case to a unit of a level its state declares under 'transfer: "
        "to:' (a unit code, e.g. ddk-js) or to a declared department (LEVEL.ROLE, e.g. "
        "district.dept_agri).  The receiver accepts or returns it; until then every event "
        "on the case is refused.",
    )
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("--to", required=True, metavar="UNIT_OR_LEVEL.ROLE")
    p.add_argument("--actor", required=True, metavar="PERSON_ID")
    p.add_argument("--reason", required=True, metavar="TEXT")
    p.add_argument("--key", metavar="IDEMPOTENCY_KEY")
    add_json(p)
    p.set_defaults(handler=case_transfer)

    p = case.add_parser("accept", help="accept the case's pending transfer (受理)")
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("--actor", required=True, metavar="PERSON_ID")
    p.add_argument("--note", metavar="TEXT")
    p.add_argument("--key", metavar="IDEMPOTENCY_KEY")
    add_json(p)
    p.set_defaults(handler=case_accept)

    p = case.add_parser("return", help="return the case's pending transfer (退回)")
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("--actor", required=True, metavar="PERSON_ID")
    p.add_argument("--reason", required=True, metavar="TEXT")
    p.add_argument("--key", metavar="IDEMPOTENCY_KEY")
    add_json(p)
    p.set_defaults(handler=case_return)

    p = case.add_parser("transfers", help="every transfer of a case, oldest first")
    p.add_argument("case_id", metavar="CASE_ID")
    add_viewer(p)
    add_json(p)
    p.set_defaults(handler=case_transfers)


def _print(view: CaseView, as_json: bool) -> None:
    if as_json:
        emit(view.as_dict())
        return
    print(f"{view.id}  {view.state} ({view.state_title})  unit {view.unit}  rev {view.revision}")


def case_transfer(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    view = app.transfers.transfer(args.case_id, args.to, args.actor, args.reason, key=args.key)
    if not args.json:
        hop = app.transfers.pending(args.case_id)
        if hop is not None:
            print(describe_pending(hop, ctx))
    _print(view, args.json)
    return 0


def case_accept(args: argparse.Namespace, ctx: Context) -> int:
    view = ctx.app().transfers.accept(args.case_id, args.actor, args.note, key=args.key)
    _print(view, args.json)
    return 0


def case_return(args: argparse.Namespace, ctx: Context) -> int:
    view = ctx.app().transfers.return_(args.case_id, args.actor, args.reason, key=args.key)
    _print(view, args.json)
    return 0


def case_transfers(args: argparse.Namespace, ctx: Context) -> int:
    hops = ctx.app().transfers.transfers(args.case_id, viewer=viewer_of(args.viewer))
    if args.json:
        emit(hops)
        return 0
    if not hops:
        print(f"{args.case_id}: no transfers")
    for h in hops:
        to = f"{h['to_role']} of {h['to_unit']}" if h["to_role"] else h["to_unit"]
        answered = (
            f"  {h['status']} by {h['answered_by']} at {ctx.local(h['answered_at'])}"
            if h["answered_by"]
            else f"  {h['status']}"
        )
        late = "  LATE" if h["late"] else ""
        print(
            f"#{h['id']}  {h['from_unit']} → {to}  sent by {h['sent_by']} at "
            f"{ctx.local(h['sent_at'])}  deadline {ctx.local(h['deadline'])}{answered}{late}"
        )
        print(f"    reason: {h['reason']}")
        if h["answer_note"]:
            print(f"    answer: {h['answer_note']}")
    return 0


def describe_pending(hop: Mapping[str, Any], ctx: Context) -> str:
    """One line for ``case show``: the pending transfer's sender and receiver."""
    to = f"{hop['to_role']} of {hop['to_unit']}" if hop["to_role"] else hop["to_unit"]
    return (
        f"  transfer #{hop['id']} pending: from {hop['from_unit']} (sent by {hop['sent_by']}) "
        f"to {to}, deadline {ctx.local(hop['deadline'])}"
    )
