"""``gengbao grid load|show|people|remove|locate``: the grid registry."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from engine.cli.common import Context, add_json, emit

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    grid = commands.add_parser("grid", help="the grid registry").add_subparsers(
        dest="grid_command", metavar="COMMAND", required=True
    )
    p = grid.add_parser("load", help="load or update units, people and roles from a grid file")
    p.add_argument("file", metavar="FILE")
    add_json(p)
    p.set_defaults(handler=grid_load)
    p = grid.add_parser("show", help="a unit: its chain, children and role holders (or the roots)")
    p.add_argument("code", metavar="CODE", nargs="?", help="default: the root units (districts)")
    add_json(p)
    p.set_defaults(handler=grid_show)
    p = grid.add_parser("people", help="people and their roles (in a unit's subtree)")
    p.add_argument("--unit", metavar="CODE", help="this unit and everything below it")
    add_json(p)
    p.set_defaults(handler=grid_people)
    p = grid.add_parser(
        "remove", help="deactivate a unit's subtree (a district), its roles and its people"
    )
    p.add_argument("code", metavar="CODE")
    p.add_argument("--force", action="store_true", help="even while cases are open in it")
    add_json(p)
    p.set_defaults(handler=grid_remove)
    p = grid.add_parser(
        "locate",
        help="which unit a position belongs to (by the boundaries in the grid file)",
        description="The lowest unit whose boundary contains the position (exit 0), or "
        "none (exit 3).  Positions are longitude then latitude, WGS-84 or CGCS2000.",
    )
    p.add_argument("lng", type=float, metavar="LNG", help="longitude, e.g. 106.48")
    p.add_argument("lat", type=float, metavar="LAT", help="latitude, e.g. 29.47")
    add_json(p)
    p.set_defaults(handler=grid_locate)


def grid_load(args: argparse.Namespace, ctx: Context) -> int:
    summary = ctx.app(sync=False).grid.load(args.file)
    if args.json:
        emit(dataclasses.asdict(summary))
    else:
        print(summary)
    return 0


def grid_show(args: argparse.Namespace, ctx: Context) -> int:
    from engine.grid.visibility import ADMIN

    views = ctx.app(sync=False).grid
    shown = views.unit(args.code, viewer=ADMIN) if args.code else views.roots(viewer=ADMIN)
    if args.json:
        emit(shown)
    elif isinstance(shown, list):
        for root in shown:
            print(f"{root['code']:<16} {root['name']}  ({root['level']}, {root['units']} units)")
    else:
        chain = " / ".join(u["name"] for u in reversed(shown["chain"]))
        print(f"{shown['code']}  {shown['name']}  ({shown['level']})")
        print(f"  under: {chain or '—'}")
        if shown.get("boundary"):
            print(f"  boundary: {shown['boundary']['type']}")
        for child in shown["children"]:
            print(f"  child: {child['code']:<16} {child['name']}  ({child['level']})")
        for role in shown["roles"]:
            print(f"  {role['role']:<18} {role['person']:<20} {role['name']}")
    return 0


def grid_people(args: argparse.Namespace, ctx: Context) -> int:
    from engine.grid.visibility import ADMIN

    found = ctx.app(sync=False).grid.people(args.unit, viewer=ADMIN)
    if args.json:
        emit(found)
    else:
        for person in found:
            roles = ", ".join(f"{r['role']}@{r['unit']}" for r in person["roles"])
            print(f"{person['id']:<22} {person['name']:<10} {person['phone'] or '':<12} {roles}")
    return 0


def grid_remove(args: argparse.Namespace, ctx: Context) -> int:
    summary = ctx.app(sync=False).grid.remove(args.code, force=args.force)
    if args.json:
        emit(dataclasses.asdict(summary))
    else:
        print(summary)
    return 0


def grid_locate(args: argparse.Namespace, ctx: Context) -> int:
    point = {"type": "Point", "coordinates": [args.lng, args.lat]}
    found = ctx.app(sync=False).grid.locate(point)
    if args.json:
        emit({"unit": found})
    elif found is None:
        print(f"no unit's boundary holds {args.lng}, {args.lat}")
    else:
        print(f"{found['code']}  {found['name']}  ({found['level']})")
    return 0 if found is not None else 3
