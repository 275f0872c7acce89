"""``gengbao workflow load|list|migrate``: workflow versions, and moving open cases
onto another one."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine.cli.common import Context, Failure, add_json, emit
from engine.errors import DefinitionError, MigrationRefused

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
    p = wf.add_parser(
        "migrate",
        help="move open cases onto another version (all listed cases or none; "
        "--dry-run shows the plan)",
    )
    p.add_argument("workflow", metavar="WORKFLOW")
    p.add_argument("--to", dest="to_version", type=int, required=True, metavar="VERSION")
    p.add_argument(
        "--from", dest="from_version", type=int, metavar="VERSION", help="only cases on it"
    )
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="OLD_STATE=NEW_STATE",
        help="where cases in a state the new version renamed or dropped go (repeatable)",
    )
    p.add_argument("--cases", metavar="ID,…", help="only these cases (comma-separated)")
    p.add_argument("--dry-run", action="store_true", help="show what would move; change nothing")
    p.add_argument(
        "--replay",
        type=int,
        metavar="DAYS",
        help="with --dry-run: replay the cases closed in the last DAYS days against the new "
        "version's deadlines (how many would have gone overdue, against how many did)",
    )
    add_json(p)
    p.set_defaults(handler=workflow_migrate)


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


def workflow_migrate(args: argparse.Namespace, ctx: Context) -> int:
    from engine.versions import MigrationPlan, parse_state_map

    if args.replay is not None and not args.dry_run:
        raise Failure("--replay needs --dry-run: a replay only reports", status=2)
    if args.replay is not None and args.replay < 1:
        raise Failure(f"--replay {args.replay}: give a number of days, 1 or more", status=2)
    try:
        mapping = parse_state_map(args.map)
    except ValueError as exc:
        raise Failure(str(exc), status=2) from exc
    case_ids = None
    if args.cases is not None:
        case_ids = [c.strip() for c in args.cases.split(",") if c.strip()]
        if not case_ids:
            raise Failure("--cases: give at least one case id", status=2)
    app = ctx.app()
    try:
        plan: MigrationPlan = app.version_moves.run(
            args.workflow,
            args.to_version,
            from_version=args.from_version,
            state_map=mapping,
            case_ids=case_ids,
            dry_run=args.dry_run,
            replay_days=args.replay,
        )
    except MigrationRefused as exc:
        if args.json:
            emit({"ok": False, "error": exc.code, "problems": exc.problems})
        else:
            print(f"gengbao: error: {exc}", file=sys.stderr)
            for p in exc.problems:
                print(f"  {_problem_line(p)}", file=sys.stderr)
        return 1
    if args.json:
        emit(plan.as_dict())
        return 0 if plan.ok else 1
    _print_plan(plan, ctx)
    return 0 if plan.ok else 1


def _problem_line(p: dict[str, Any]) -> str:
    where = f"case {p['case']} ({p['state']})" if p.get("case") else "request"
    return f"{where}: {p['reason']}"


def _print_plan(plan: Any, ctx: Context) -> None:
    movable = [m for m in plan.moves if m.ok]
    verb = "would move" if plan.dry_run else "moved"
    print(f"{plan.workflow} → v{plan.to_version}: {verb} {len(movable)} open case(s)")
    for m in movable:
        late = "  overdue at once" if m.overdue_at_once else ""
        state = m.state if m.state == m.new_state else f"{m.state} → {m.new_state}"
        print(
            f"  {m.case}  v{m.from_version} → v{m.to_version}  {m.unit}  {state}  "
            f"deadline {ctx.local(m.deadline)} → {ctx.local(m.new_deadline)}{late}"
        )
    if plan.problems:
        print(f"cannot move ({len(plan.problems)}):")
        for p in plan.problems:
            print(f"  {_problem_line(p)}")
    r = plan.replay
    if r is not None:
        print(
            f"replay of the {r.cases} case(s) closed since {ctx.local(r.since)}: "
            f"{r.overdue_cases_was} went overdue; on v{plan.to_version} "
            f"{r.overdue_cases_would_be} would have"
        )
        for line in r.lines:
            if line.overdue_was or line.overdue_would_be:
                print(
                    f"  {line.state:<20} {line.unit:<14} {line.stays} stay(s): overdue "
                    f"{line.overdue_was} → {line.overdue_would_be}"
                )
