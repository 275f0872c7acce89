"""``gengbao case sign|refuse|parties``: the countersign (会签) of a case's state."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from engine.cli.common import Context, add_json, add_viewer, emit, viewer_of

if TYPE_CHECKING:
    from engine.cases.records import CaseView
    from engine.duties.countersign import PartyView

__all__ = ["add_case_commands", "print_parties"]


def add_case_commands(case: Any) -> None:
    """Add ``sign``, ``refuse`` and ``parties`` to the ``case`` subcommands."""
    p = case.add_parser("sign", help="sign a case's countersign as one of its parties")
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("--actor", required=True, metavar="PERSON_ID")
    p.add_argument("--role", metavar="LEVEL.ROLE", help="the party, when the actor holds several")
    p.add_argument("--note", metavar="TEXT", help="the party's opinion (会签意见)")
    p.add_argument("--key", metavar="IDEMPOTENCY_KEY")
    add_json(p)
    p.set_defaults(handler=case_sign)

    p = case.add_parser("refuse", help="refuse a case's countersign, with a reason")
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("--actor", required=True, metavar="PERSON_ID")
    p.add_argument("--reason", required=True, metavar="TEXT")
    p.add_argument("--role", metavar="LEVEL.ROLE", help="the party, when the actor holds several")
    p.add_argument("--key", metavar="IDEMPOTENCY_KEY")
    add_json(p)
    p.set_defaults(handler=case_refuse)

    p = case.add_parser("parties", help="who has signed a case's countersign, who is pending")
    p.add_argument("case_id", metavar="CASE_ID")
    add_viewer(p)
    add_json(p)
    p.set_defaults(handler=case_parties)


def case_sign(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    view = app.countersigns.sign(
        args.case_id, args.actor, role=args.role, note=args.note, key=args.key
    )
    _answer(view, args.json, ctx)
    return 0


def case_refuse(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    view = app.countersigns.refuse(
        args.case_id, args.actor, reason=args.reason, role=args.role, key=args.key
    )
    _answer(view, args.json, ctx)
    return 0


def case_parties(args: argparse.Namespace, ctx: Context) -> int:
    parties = ctx.app().countersigns.parties(args.case_id, viewer=viewer_of(args.viewer))
    if args.json:
        emit([p.as_dict() for p in parties])
        return 0
    if not parties:
        print(f"{args.case_id}: no countersign")
    print_parties(parties, ctx, indent="")
    return 0


def _answer(view: CaseView, as_json: bool, ctx: Context) -> None:
    parties = ctx.app().countersigns.parties(view.id)
    if as_json:
        emit({**view.as_dict(), "parties": [p.as_dict() for p in parties]})
        return
    print(f"{view.id}  {view.state} ({view.state_title})  revision {view.revision}")
    print_parties(parties, ctx)


def print_parties(parties: list[PartyView], ctx: Context, indent: str = "  ") -> None:
    """One line per party: role, title, status, who and when, deadline, late."""
    for p in parties:
        who = f" by {p.actor} at {ctx.local(p.acted_at)}" if p.actor else ""
        due = f"  deadline {ctx.local(p.deadline)}" if p.deadline else ""
        late = "  LATE" if p.late else ""
        note = f"  「{p.note}」" if p.note else ""
        print(f"{indent}party {p.role} ({p.title}): {p.status}{who}{due}{late}{note}")
