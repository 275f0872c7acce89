"""``gengbao workflow load|list``: workflow versions."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.common import Context, add_json, emit
from engine.errors import DefinitionError

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    wf = commands.add_parser("workflow", help="workflow versions").add_subparsers(
        dest="workflow_command", metavar="COMMAND", required=True
    )
    p = wf.add_parser(
        "load",
        help="register workflow files and make them current (a changed file is a new "
        "version; an older version's content re-activates it)",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    add_json(p)
    p.set_defaults(handler=workflow_load)
    p = wf.add_parser(
        "list", help="versions, which is current (*), when each was activated, open cases"
    )
    p.add_argument("workflow", nargs="?", metavar="WORKFLOW", help="only this workflow")
    add_json(p)
    p.set_defaults(handler=workflow_list)


def workflow_load(args: argparse.Namespace, ctx: Context) -> int:
    from engine.definitions import validate_file
    from engine.definitions.grid_roles import missing_roles

    app = ctx.app(sync=False)
    held = app.grid.held_roles()
    if held:  # a loaded grid: every role the workflows name must exist in it
        problems = []
        for path in args.files:
            result = validate_file(path, app.catalog.templates)
            if result.workflow is not None:
                problems += missing_roles(result.workflow, result.positions, held, "the grid")
        if problems:
            raise DefinitionError(problems)
    loaded = [app.catalog.register_file(path) for path in args.files]
    if args.json:
        emit([r.as_dict() for r in loaded])
    else:
        for r in loaded:
            print(f"{r.path}: {r.workflow}: v{r.version} ({r.outcome})")
    return 0


def workflow_list(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    versions = app.catalog.versions(args.workflow)
    if args.json:
        emit([v.as_dict() for v in versions])
    else:
        for v in versions:
            marker = "*" if v.current else " "
            when = ", ".join(ctx.local(at) for at in v.activated_at) or "never"
            print(
                f"{marker} {v.workflow} v{v.version}  {v.title}  open cases: {v.open_cases} "
                f"(of {v.total_cases})  {v.content_hash[:12]}  activated {when}"
                f"{'  (current)' if v.current else ''}"
            )
    return 0
