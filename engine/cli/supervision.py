"""``gengbao case supervise|reply|supervisions``: supervision notices (督办)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from engine.cli.common import Context, add_json, add_viewer, emit, viewer_of

if TYPE_CHECKING:
    from engine.duties.supervision import SupervisionView

__all__ = ["add_case_commands", "open_supervisions"]


def add_case_commands(case: Any) -> None:
    """The ``case`` subcommands of supervision, on the ``case`` subparsers."""
    p = case.add_parser(
        "supervise",
        help="issue a supervision notice (督办) on an open case",
        description="A holder of one of the workflow's supervision roles on a unit above the "
        "case's issues a notice; the responsible leader is told.  It is answered by the case "
        "moving on or by a written reply (gengbao case reply).",
    )
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("--actor", required=True, metavar="PERSON_ID")
    p.add_argument("--note", required=True, metavar="TEXT", help="what is asked (督办意见)")
    p.add_argument(
        "--within",
        metavar="DURATION",
        help="deadline of the answer: 30m, 2h, 3d, '3 working days' (default: the workflow's)",
    )
    p.add_argument("--key", metavar="IDEMPOTENCY_KEY")
    add_json(p)
    p.set_defaults(handler=case_supervise)

    p = case.add_parser("reply", help="answer a supervision notice in writing")
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("--actor", required=True, metavar="PERSON_ID")
    p.add_argument("--note", required=True, metavar="TEXT", help="the reply")
    p.add_argument(
        "--supervision", type=int, metavar="ID", help="which notice (default: the only open one)"
    )
    p.add_argument("--key", metavar="IDEMPOTENCY_KEY")
    add_json(p)
    p.set_defaults(handler=case_reply)

    p = case.add_parser("supervisions", help="a case's supervision notices, oldest first")
    p.add_argument("case_id", metavar="CASE_ID")
    add_viewer(p)
    add_json(p)
    p.set_defaults(handler=case_supervisions)


def _line(s: SupervisionView, ctx: Context) -> str:
    text = (
        f"supervision {s.id}  {s.label}  by {s.issued_by} at {ctx.local(s.issued_at)}  "
        f"due {ctx.local(s.deadline_at)}  「{s.note}」"
    )
    if s.answer == "replied":
        text += f"  reply by {s.answered_by}: 「{s.reply}」"
    return text


def _answer(view: Any, notice: SupervisionView, as_json: bool, ctx: Context) -> None:
    if as_json:
        emit({"case": view.as_dict(), "supervision": notice.as_dict()})
        return
    print(f"{view.id}  {view.state} ({view.state_title})  revision {view.revision}")
    print(f"  {_line(notice, ctx)}")


def case_supervise(args: argparse.Namespace, ctx: Context) -> int:
    view, notice = ctx.app().supervision.supervise(
        args.case_id, args.actor, args.note, args.within, key=args.key
    )
    _answer(view, notice, args.json, ctx)
    return 0


def case_reply(args: argparse.Namespace, ctx: Context) -> int:
    view, notice = ctx.app().supervision.reply(
        args.case_id, args.actor, args.note, args.supervision, key=args.key
    )
    _answer(view, notice, args.json, ctx)
    return 0


def case_supervisions(args: argparse.Namespace, ctx: Context) -> int:
    notices = ctx.app().supervision.supervisions(args.case_id, viewer=viewer_of(args.viewer))
    if args.json:
        emit([s.as_dict() for s in notices])
        return 0
    if not notices:
        print(f"{args.case_id}: no supervision")
    for s in notices:
        print(_line(s, ctx))
    return 0


def open_supervisions(case_id: str, viewer: Any, ctx: Context) -> list[dict[str, Any]]:
    """``case show``: the case's open notices."""
    notices = ctx.app().supervision.supervisions(case_id, viewer=viewer)
    return [s.as_dict() for s in notices if s.status == "open"]
