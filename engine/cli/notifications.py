"""``gengbao notifications dispatch|list|ack|retry``."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.common import Context, add_json, emit

__all__ = ["add_commands"]

STATUSES = ("pending", "sending", "sent", "dead", "skipped")


def add_commands(commands: Any) -> None:
    group = commands.add_parser("notifications", help="the notification outbox").add_subparsers(
        dest="notifications_command", metavar="COMMAND", required=True
    )
    p = group.add_parser("dispatch", help="send what is due")
    p.add_argument(
        "--once",
        action="store_true",
        required=True,
        help="send everything due now, then exit (gengbao serve sends continuously)",
    )
    add_json(p)
    p.set_defaults(handler=dispatch)

    p = group.add_parser("list", help="deliveries, newest last")
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("--case", metavar="CASE_ID")
    p.add_argument("--limit", type=int, default=100)
    add_json(p)
    p.set_defaults(handler=list_deliveries)

    p = group.add_parser("ack", help="acknowledge a notification sent to you (who read it)")
    p.add_argument("notification_id", type=int, metavar="ID", help="its notification id")
    p.add_argument("--actor", required=True, metavar="PERSON_ID")
    add_json(p)
    p.set_defaults(handler=ack)

    p = group.add_parser("retry", help="send a dead delivery again")
    p.add_argument("delivery_id", type=int, metavar="ID")
    add_json(p)
    p.set_defaults(handler=retry)


def dispatch(args: argparse.Namespace, ctx: Context) -> int:
    from notifications.dispatch_loop import DispatchLoop

    results = DispatchLoop(ctx.app().dispatcher).drain()  # each channel on its own threads
    if args.json:
        emit([r.as_dict() for r in results])
        return 0
    for r in results:
        error = f"  ({r.error})" if r.error else ""
        print(
            f"delivery {r.delivery_id}  {r.channel:<8} {r.address:<32} {r.status} "
            f"after {r.attempts} attempt(s){error}"
        )
    print(
        f"{sum(r.status == 'sent' for r in results)} sent, "
        f"{sum(r.status == 'pending' for r in results)} to retry, "
        f"{sum(r.status == 'dead' for r in results)} dead"
    )
    return 0


def list_deliveries(args: argparse.Namespace, ctx: Context) -> int:
    from engine.grid.visibility import ADMIN

    rows = ctx.app().dispatcher.list(args.status, args.case, args.limit, viewer=ADMIN)
    if args.json:
        emit(rows)
        return 0
    for r in rows:
        error = f"  last error: {r['last_error']}" if r["last_error"] else ""
        read = f"  read {ctx.local(r['read_at'])}" if r["read_at"] else ""
        print(
            f"{r['id']:>5}  {r['status']:<8} {r['kind']:<10} case {r['case']}  "
            f"{r['channel']} → {r['address']}  attempts {r['attempts']}{read}{error}"
        )
    return 0


def ack(args: argparse.Namespace, ctx: Context) -> int:
    done = ctx.app().notification_reads.ack(args.notification_id, args.actor)
    if args.json:
        emit(done)
    else:
        already = "" if done["first"] else "was already "
        print(
            f"notification {args.notification_id} {already}read by {args.actor} "
            f"at {ctx.local(done['acked_at'])}"
        )
    return 0


def retry(args: argparse.Namespace, ctx: Context) -> int:
    ctx.app().dispatcher.retry(args.delivery_id)
    if args.json:
        emit({"id": args.delivery_id, "status": "pending"})
    else:
        print(f"delivery {args.delivery_id} queued again")
    return 0
