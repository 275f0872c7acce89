"""``gengbao person set-password PERSON``: a person's password for the pages (``/ui``).

The password is read from standard input — one line, typed at a prompt that does not
echo it when standard input is a terminal — never from an argument, which any user of
the machine could read in the process list and which stays in shell histories.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from engine.cli.common import Context, Failure, add_json, emit

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    person = commands.add_parser("person", help="people's sign-in for the pages").add_subparsers(
        dest="person_command", metavar="COMMAND", required=True
    )
    p = person.add_parser(
        "set-password",
        help="set a person's password for the pages, read from standard input",
    )
    p.add_argument("person", metavar="PERSON", help="a person id of the grid")
    add_json(p)
    p.set_defaults(handler=set_password)


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise Failure("person set-password: the two passwords differ; nothing was set")
        return first
    line = sys.stdin.readline()
    if not line:
        raise Failure("person set-password: no password on standard input; nothing was set")
    return line.rstrip("\r\n")


def set_password(args: argparse.Namespace, ctx: Context) -> int:
    password = _read_password()
    ctx.app(sync=False).credentials.set_password(args.person, password)
    if args.json:
        emit({"person": args.person, "password_set": True})
    else:
        print(f"password of {args.person} set; they sign in at /ui/login", file=sys.stderr)
    return 0
