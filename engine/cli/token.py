"""``gengbao token create|list|revoke``: API tokens (only a hash is stored)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine.cli.common import Context, Failure, add_json, emit

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    token = commands.add_parser("token", help="API tokens").add_subparsers(
        dest="token_command", metavar="COMMAND", required=True
    )
    p = token.add_parser("create", help="make a token for a person or service; printed once")
    p.add_argument("--actor", required=True, metavar="PERSON_OR_SERVICE_ID")
    p.add_argument("--name", metavar="NAME", help="what the token is for")
    add_json(p)
    p.set_defaults(handler=token_create)

    p = token.add_parser("list", help="tokens (never their secret)")
    add_json(p)
    p.set_defaults(handler=token_list)

    p = token.add_parser("revoke", help="revoke a token at once (or every token of a name)")
    p.add_argument(
        "ref", metavar="TOKEN_ID_OR_PREFIX", nargs="?", help="its id, or how the token begins"
    )
    p.add_argument("--name", metavar="NAME", help="instead: every active token of this name")
    add_json(p)
    p.set_defaults(handler=token_revoke)


def token_create(args: argparse.Namespace, ctx: Context) -> int:
    info, text = ctx.app(sync=False).tokens.create(args.actor, args.name)
    if args.json:
        emit({**info.as_dict(), "token": text})
    else:
        print(text)  # alone on stdout: TOKEN=$(gengbao token create --actor ID)
        print(
            f"token {info.id} for {info.actor}: shown only now; "
            f"send it as 'Authorization: Bearer TOKEN'",
            file=sys.stderr,
        )
    return 0


def token_list(args: argparse.Namespace, ctx: Context) -> int:
    infos = ctx.app(sync=False).tokens.list()
    if args.json:
        emit([i.as_dict() for i in infos])
        return 0
    for i in infos:
        status = f"revoked {ctx.local(i.revoked_at)}" if i.revoked_at else "active"
        print(
            f"{i.id}  {i.prefix}…  {i.actor:<20} {status:<24} "
            f"created {ctx.local(i.created_at)}  {i.name or ''}"
        )
    return 0


def token_revoke(args: argparse.Namespace, ctx: Context) -> int:
    if (args.ref is None) == (args.name is None):
        raise Failure("token revoke: give a TOKEN_ID_OR_PREFIX or --name NAME (one of them)", 2)
    if args.name is not None:
        revoked = ctx.app(sync=False).tokens.revoke_named(args.name)
        if args.json:
            emit([i.as_dict() for i in revoked])
        else:
            print(f"{len(revoked)} token(s) named {args.name!r} revoked")
        return 0
    info = ctx.app(sync=False).tokens.revoke(args.ref)
    if args.json:
        emit(info.as_dict())
    else:
        print(f"token {info.id} of {info.actor} revoked")
    return 0
