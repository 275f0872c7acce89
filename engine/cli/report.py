"""``gengbao report assessment|chart|accountability``: the per-unit assessment (考评), its
charts (SVG) and the accountability register (约谈/问责台账) over a period."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cli.common import (
    Context,
    Failure,
    add_choice,
    add_json,
    add_viewer,
    iso_date,
    viewer_of,
    write_output,
)
from engine.errors import InvalidDateRange

if TYPE_CHECKING:
    from engine.assessment import AssessmentConfig

__all__ = ["add_commands", "assessment_config"]


def assessment_config(explicit: str | None, settings_file: Path | None) -> AssessmentConfig:
    """``--weights FILE``, else ``assessment.yaml`` beside the settings file (default
    ``config/``), else the built-in defaults (the same as the bundled file)."""
    from engine.assessment import AssessmentConfig, load_config

    if explicit:
        return load_config(explicit)
    base = settings_file.parent if settings_file else Path("config")
    candidate = base / "assessment.yaml"
    return load_config(candidate) if candidate.is_file() else AssessmentConfig()


def _levels() -> Collection[str]:
    from engine.grid.parse import LEVELS

    return LEVELS


def _formats() -> Collection[str]:
    from engine.assessment import FORMATS

    return FORMATS


def _register_formats() -> Collection[str]:
    from engine.assessment.accountability import FORMATS

    return FORMATS


def add_commands(commands: Any) -> None:
    report = commands.add_parser("report", help="reports").add_subparsers(
        dest="report_command", metavar="COMMAND", required=True
    )
    p = report.add_parser(
        "assessment", help="per-unit assessment (考评) over a period, rolled up the grid"
    )
    p.add_argument("--from", dest="date_from", type=iso_date, required=True, metavar="DATE")
    p.add_argument("--to", dest="date_to", type=iso_date, required=True, metavar="DATE")
    p.add_argument("--unit", help="this unit and everything below it")
    add_choice(p, "--level", choices=_levels, help="only rows of this level")
    add_choice(p, "--format", choices=_formats, default="table")
    p.add_argument(
        "--weights",
        metavar="FILE",
        help="assessment settings (default: assessment.yaml beside the settings file)",
    )
    p.add_argument("--output", "--out", "-o", metavar="FILE", help="default: stdout")
    add_viewer(p)
    add_json(p)
    p.set_defaults(handler=report_assessment)

    p = report.add_parser(
        "chart", help="a chart of the assessment as SVG: scores, patrols (done/required), overdue"
    )
    p.add_argument("name", choices=("scores", "patrols", "overdue"), metavar="NAME")
    p.add_argument("--from", dest="date_from", type=iso_date, required=True, metavar="DATE")
    p.add_argument("--to", dest="date_to", type=iso_date, required=True, metavar="DATE")
    p.add_argument("--unit", help="this unit and everything below it")
    add_choice(p, "--level", choices=_levels, help="only rows of this level")
    p.add_argument("--weights", metavar="FILE", help="assessment settings (for the scores)")
    p.add_argument("--output", "--out", "-o", metavar="FILE", help="default: stdout")
    add_viewer(p)
    p.set_defaults(handler=report_chart)

    p = report.add_parser(
        "accountability",
        help="accountability register (约谈/问责台账): overdue facts, supervisions, returns",
        description="Per unit and per person over the period: overdue facts by duty, the "
        "highest rung reached, supervisions received and unanswered, transfers returned, "
        "unacknowledged notifications; each line names the cases and records behind it.",
    )
    p.add_argument("--from", dest="date_from", type=iso_date, required=True, metavar="DATE")
    p.add_argument("--to", dest="date_to", type=iso_date, required=True, metavar="DATE")
    add_choice(p, "--level", choices=_levels, help="only lines of units of this level")
    add_choice(p, "--format", choices=_register_formats, default="table")
    p.add_argument("--output", "-o", metavar="FILE", help="default: stdout")
    add_json(p)
    p.set_defaults(handler=report_accountability)


def report_assessment(args: argparse.Namespace, ctx: Context) -> int:
    from engine.assessment import render

    app = ctx.app(sync=False)
    config = assessment_config(args.weights, app.settings.source)
    try:
        report = app.assessment.report(
            args.date_from,
            args.date_to,
            config,
            unit=args.unit,
            level=args.level,
            viewer=viewer_of(args.viewer),
        )
    except InvalidDateRange as exc:  # the CLI's edge names its own flags
        raise Failure(f"--to {exc.last} is before --from {exc.first}", 2) from exc
    fmt = "json" if args.json else args.format
    write_output(render(report, fmt), args.output)
    if args.output:
        print(f"{args.output}: {len(report.rows)} unit(s)", file=sys.stderr)
    return 0


def report_chart(args: argparse.Namespace, ctx: Context) -> int:
    from engine.assessment.charts import render_chart

    app = ctx.app(sync=False)
    config = assessment_config(args.weights, app.settings.source)
    try:
        report = app.assessment.report(
            args.date_from,
            args.date_to,
            config,
            unit=args.unit,
            level=args.level,
            viewer=viewer_of(args.viewer),
        )
    except InvalidDateRange as exc:
        raise Failure(f"--to {exc.last} is before --from {exc.first}", 2) from exc
    write_output(render_chart(report, args.name), args.output)
    if args.output:
        print(f"{args.output}: {args.name}, {len(report.rows)} unit(s)", file=sys.stderr)
    return 0


def report_accountability(args: argparse.Namespace, ctx: Context) -> int:
    from engine.assessment.accountability import render

    app = ctx.app(sync=False)
    try:
        register = app.assessment.accountability(args.date_from, args.date_to, level=args.level)
    except InvalidDateRange as exc:
        raise Failure(f"--to {exc.last} is before --from {exc.first}", 2) from exc
    fmt = "json" if args.json else args.format
    write_output(render(register, fmt), args.output)
    if args.output:
        print(f"{args.output}: {len(register.lines)} line(s)", file=sys.stderr)
    return 0
