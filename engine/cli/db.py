"""``gengbao db upgrade``: the database schema."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.common import Context, add_json, emit

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    db = commands.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", metavar="COMMAND", required=True
    )
    p = db.add_parser("upgrade", help="migrate the database to the current schema")
    add_json(p)
    p.set_defaults(handler=db_upgrade)


def db_upgrade(args: argparse.Namespace, ctx: Context) -> int:
    ctx.app(sync=False).upgrade_schema()
    if args.json:
        emit({"ok": True})
    else:
        print("database is at the current schema")
    return 0
