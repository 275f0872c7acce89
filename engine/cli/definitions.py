"""``gengbao validate``, ``gengbao graph`` and ``gengbao schema``."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cli.common import Context, Failure, add_json, emit

if TYPE_CHECKING:
    from engine.calendars import WorkingCalendar
    from engine.definitions import Diagnostic, Validated
    from engine.grid.parse import Grid
    from notifications.templates import TemplateStore

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    p = commands.add_parser("validate", help="check workflow files; report every problem")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--grid", metavar="GRID_FILE", help="also check every role against this grid file"
    )
    add_json(p)
    p.set_defaults(handler=validate)

    p = commands.add_parser("graph", help="print a workflow's state diagram")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    p.set_defaults(handler=graph)

    p = commands.add_parser("schema", help="print the JSON Schema of the workflow format")
    p.set_defaults(handler=schema)


def _templates(ctx: Context) -> TemplateStore:
    from engine.paths import template_store
    from engine.settings import load_settings

    return template_store(load_settings(ctx.config).source)


def calendar_warnings(
    result: Validated, calendar: WorkingCalendar, now: dt.datetime, default_tz: str
) -> list[Diagnostic]:
    """Working-day deadlines that, started now, would run into a year with no
    official holiday arrangement: still counted (weekends and known holidays),
    but an administrator should add the year under config/calendars/."""
    from engine.definitions import Diagnostic

    wf = result.workflow
    if wf is None:
        return []
    tz = wf.timezone or default_tz
    found: list[Diagnostic] = []
    for state in wf.states:
        within = state.deadline.within if state.deadline else None
        if within is None or within.kind != "working_days":
            continue
        path = f"states.{state.name}.deadline.within"
        line, column = result.positions.get(path, (1, 1))
        for warning in calendar.warnings_for(now, within, tz):
            found.append(Diagnostic(wf.source_path, line, column, "warning", path, warning))
    return found


def validate(args: argparse.Namespace, ctx: Context) -> int:
    from engine.calendars import WorkingCalendar
    from engine.definitions import validate_file
    from engine.definitions.grid_roles import missing_roles
    from engine.grid.parse import roles_in
    from engine.paths import calendars_folder, template_store
    from engine.settings import load_settings

    settings = load_settings(ctx.config)
    store = template_store(settings.source)
    calendar = WorkingCalendar(calendars_folder(settings.source))
    now = ctx.now or dt.datetime.now(dt.UTC)
    held = roles_in(_read_grid(args.grid)) if args.grid else None
    results = []
    for path in args.files:
        result = validate_file(path, store.check)
        extra = calendar_warnings(result, calendar, now, settings.timezone)
        if held is not None and result.workflow is not None:
            extra += missing_roles(result.workflow, result.positions, held, f"grid {args.grid}")
        results.append(replace(result, diagnostics=result.diagnostics + extra))
    errors = sum(len(r.errors) for r in results)
    warnings = sum(len(r.warnings) for r in results)
    if args.json:
        emit(
            [
                {
                    "file": path,
                    "ok": r.ok,
                    "workflow": r.workflow.id if r.workflow else None,
                    "diagnostics": [d.as_dict() for d in r.diagnostics],
                }
                for path, r in zip(args.files, results, strict=True)
            ]
        )
    else:
        for path, r in zip(args.files, results, strict=True):
            for d in r.diagnostics:
                print(d, file=sys.stderr)
            if r.ok and r.workflow is not None:
                wf = r.workflow
                print(
                    f"{path}: ok: {wf.id} ({len(wf.states)} states, "
                    f"{len(wf.transitions)} transitions)"
                )
        if errors or warnings:
            print(f"{errors} error(s), {warnings} warning(s)", file=sys.stderr)
    return 1 if errors else 0


def _read_grid(path: str) -> Grid:
    from engine.grid.parse import parse_grid

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Failure(f"{path}: cannot read grid file: {exc}", 2) from None
    return parse_grid(text, path)


def graph(args: argparse.Namespace, ctx: Context) -> int:
    from engine.definitions import validate_file
    from engine.definitions.diagram import render

    result = validate_file(args.file, _templates(ctx).check)
    if not result.ok or result.workflow is None:
        for d in result.diagnostics:
            print(d, file=sys.stderr)
        raise Failure(f"{args.file} has errors; fix them to draw its diagram")
    sys.stdout.write(render(result.workflow, args.format))
    return 0


def schema(args: argparse.Namespace, ctx: Context) -> int:
    from engine.definitions.jsonschema import workflow_schema

    emit(workflow_schema())
    return 0
