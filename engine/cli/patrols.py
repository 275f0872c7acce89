"""``gengbao patrol …`` (the ledger, rules, obligations) and ``gengbao survey …``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Collection
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from engine.cli import photos
from engine.cli.common import (
    Context,
    Failure,
    add_choice,
    add_json,
    emit,
    iso_date,
    viewer_of,
    write_output,
)

if TYPE_CHECKING:
    from engine.patrols.ledger import PatrolView

__all__ = ["add_commands", "json_value"]


def json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"not valid JSON: {exc.msg} at character {exc.pos}"
        ) from None


def _moment(text: str) -> dt.datetime:
    """ISO 8601; without an offset, the settings' time zone is meant (resolved later)."""
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date-time: {text!r} (e.g. 2026-09-18T09:00 or …+08:00)"
        ) from None


def _aware(moment: dt.datetime | None, tz: str) -> dt.datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=ZoneInfo(tz))


def _sources() -> Collection[str]:
    from engine.patrols.survey import SOURCES

    return SOURCES


# SOURCES[0], written out: the parser never imports the patrols (tests/test_cli_imports.py)
DEFAULT_SOURCE = "年度变更调查"


def add_commands(commands: Any) -> None:
    patrol = commands.add_parser("patrol", help="the patrol ledger and patrol obligations")
    sub = patrol.add_subparsers(dest="patrol_command", metavar="COMMAND", required=True)

    p = sub.add_parser("record", help="record a patrol (巡查) in the ledger")
    p.add_argument("--unit", required=True, metavar="UNIT_CODE")
    p.add_argument("--actor", required=True, metavar="PERSON_ID", help="the patroller")
    p.add_argument("--findings", metavar="TEXT", help="what was found (free text)")
    p.add_argument(
        "--suspected",
        type=json_value,
        default=[],
        metavar="JSON",
        help="suspected violations, a JSON list",
    )
    p.add_argument(
        "--route",
        type=json_value,
        metavar="JSON",
        help="route points, e.g. [[106.48, 29.48], [106.49, 29.48]]",
    )
    p.add_argument("--area", type=float, metavar="M2", help="area covered, m²")
    p.add_argument(
        "--attach",
        action="append",
        default=[],
        metavar="REF",
        help="an attachment (file name or URL); repeatable",
    )
    p.add_argument("--started", type=_moment, metavar="ISO", help="default: now")
    p.add_argument("--ended", type=_moment, metavar="ISO")
    add_json(p)
    p.set_defaults(handler=patrol_record)

    p = sub.add_parser("show", help="one patrol")
    p.add_argument("patrol_id", metavar="PATROL_ID")
    p.add_argument("--as", dest="viewer", metavar="PERSON_ID", help="read as this person")
    add_json(p)
    p.set_defaults(handler=patrol_show)

    p = sub.add_parser("list", help="patrols, oldest first")
    p.add_argument("--unit", help="this unit and everything below it")
    p.add_argument("--from", dest="date_from", type=iso_date, metavar="DATE")
    p.add_argument("--to", dest="date_to", type=iso_date, metavar="DATE")
    p.add_argument(
        "--as",
        dest="viewer",
        metavar="PERSON_ID",
        help="only what this person may read (a role on the unit's chain)",
    )
    p.add_argument("--limit", type=int, default=1000)
    add_json(p)
    p.set_defaults(handler=patrol_list)

    p = sub.add_parser("export", help="the ledger (巡查台账) as CSV or XLSX, Chinese titles")
    p.add_argument("--from", dest="date_from", type=iso_date, required=True, metavar="DATE")
    p.add_argument("--to", dest="date_to", type=iso_date, required=True, metavar="DATE")
    p.add_argument("--unit", help="this unit and everything below it")
    p.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    p.add_argument("--output", "-o", metavar="FILE", help="default: stdout")
    add_json(p)
    p.set_defaults(handler=patrol_export)

    p = sub.add_parser("open-case", help="open a case from a patrol's finding, in one step")
    p.add_argument("patrol_id", metavar="PATROL_ID")
    p.add_argument("workflow", metavar="WORKFLOW")
    p.add_argument("--actor", required=True, metavar="PERSON_ID")
    p.add_argument("--data", type=json_value, default={}, metavar="JSON")
    p.add_argument("--unit", metavar="UNIT_CODE", help="default: the patrol's unit")
    p.add_argument("--key", metavar="IDEMPOTENCY_KEY")
    add_json(p)
    p.set_defaults(handler=patrol_open_case)

    p = sub.add_parser("link", help="link an existing case to a patrol")
    p.add_argument("patrol_id", metavar="PATROL_ID")
    p.add_argument("case_id", metavar="CASE_ID")
    add_json(p)
    p.set_defaults(handler=patrol_link)

    rules = sub.add_parser("rules", help="patrol obligations").add_subparsers(
        dest="rules_command", metavar="COMMAND", required=True
    )
    p = rules.add_parser("load", help="check a rules file and make it the active set")
    p.add_argument("file", metavar="FILE")
    add_json(p)
    p.set_defaults(handler=rules_load)
    p = rules.add_parser("show", help="the active rules")
    add_json(p)
    p.set_defaults(handler=rules_show)

    p = sub.add_parser("status", help="each unit's current period: patrols done / required")
    p.add_argument("--unit", help="this unit and everything below it")
    p.add_argument("--short", action="store_true", help="only units still short")
    add_json(p)
    p.set_defaults(handler=patrol_status)
    photos.add_commands(sub)

    survey = commands.add_parser("survey", help="survey and satellite findings")
    sub = survey.add_subparsers(dest="survey_command", metavar="COMMAND", required=True)
    p = sub.add_parser(
        "import",
        help="import findings from CSV (ref,unit,found_on,...,geometry) or a GeoJSON "
        "FeatureCollection",
    )
    p.add_argument("file", metavar="FILE.csv|FILE.geojson")
    add_choice(p, "--source", choices=_sources, default=DEFAULT_SOURCE)
    add_json(p)
    p.set_defaults(handler=survey_import)
    p = sub.add_parser("list", help="findings, each with the case that found it or 'missed'")
    p.add_argument("--from", dest="date_from", type=iso_date, metavar="DATE")
    p.add_argument("--to", dest="date_to", type=iso_date, metavar="DATE")
    p.add_argument("--unit", help="this unit and everything below it")
    p.add_argument("--missed", action="store_true", help="only those the grid missed")
    p.add_argument("--weights", metavar="FILE", help="assessment settings (match radius)")
    add_json(p)
    p.set_defaults(handler=survey_list)


# ---------------------------------------------------------------- handlers


def _print_patrol(v: PatrolView, tz: str) -> None:
    zone = ZoneInfo(tz)
    end = f" – {v.ended_at.astimezone(zone):%H:%M}" if v.ended_at else ""
    print(
        f"{v.id}  {v.unit} {v.unit_name}  {v.actor} {v.actor_name}  "
        f"{v.started_at.astimezone(zone):%Y-%m-%d %H:%M}{end}"
        + (f"  cases: {', '.join(v.cases)}" if v.cases else "")
    )
    if v.findings:
        print(f"  findings: {v.findings}")
    for c in v.credited:
        print(f"  counts for {c['rule']} {c['unit']} {c['period']}")


def patrol_record(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app(sync=False)
    tz = app.settings.timezone
    view = app.patrols.ledger.record(
        args.unit,
        args.actor,
        started=_aware(args.started, tz),
        ended=_aware(args.ended, tz),
        route=args.route,
        area_m2=args.area,
        findings=args.findings,
        suspected=args.suspected,
        attachments=args.attach,
    )
    if args.json:
        emit(view.as_dict())
    else:
        _print_patrol(view, tz)
    return 0


def patrol_show(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app(sync=False)
    view = app.patrols.ledger.get(args.patrol_id, viewer=viewer_of(args.viewer))
    if args.json:
        emit(view.as_dict())
    else:
        _print_patrol(view, app.settings.timezone)
    return 0


def patrol_list(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app(sync=False)
    views = app.patrols.ledger.list(
        args.unit, args.date_from, args.date_to, viewer=viewer_of(args.viewer), limit=args.limit
    )
    if args.json:
        emit([v.as_dict() for v in views])
    else:
        for v in views:
            _print_patrol(v, app.settings.timezone)
        print(f"{len(views)} patrol(s)")
    return 0


def patrol_export(args: argparse.Namespace, ctx: Context) -> int:
    from engine.grid.visibility import ADMIN
    from engine.patrols.export import ledger_csv, ledger_xlsx

    if args.date_to < args.date_from:
        raise Failure(f"--to {args.date_to} is before --from {args.date_from}", 2)
    app = ctx.app(sync=False)
    views = app.patrols.ledger.list(
        args.unit, args.date_from, args.date_to, viewer=ADMIN, limit=None
    )
    tz = app.settings.timezone
    data = ledger_xlsx(views, tz) if args.format == "xlsx" else ledger_csv(views, tz)
    write_output(data, args.output)
    if args.output:
        print(f"{args.output}: {len(views)} patrol(s)", file=sys.stderr)
    return 0


def patrol_open_case(args: argparse.Namespace, ctx: Context) -> int:
    if not isinstance(args.data, dict):
        raise Failure('--data must be a JSON object, e.g. \'{"address": "..."}\'', 2)
    view = ctx.app().patrols.ledger.open_case(
        args.patrol_id, args.workflow, args.actor, args.data, unit=args.unit, key=args.key
    )
    if args.json:
        emit(view.as_dict())
    else:
        print(
            f"{view.id}  {view.workflow} v{view.version}  {view.state}  unit {view.unit}"
            f"  from patrol {args.patrol_id}"
        )
    return 0


def patrol_link(args: argparse.Namespace, ctx: Context) -> int:
    ctx.app().patrols.ledger.link(args.patrol_id, args.case_id)
    if args.json:
        emit({"patrol": args.patrol_id, "case": args.case_id})
    else:
        print(f"{args.patrol_id} → {args.case_id}")
    return 0


def rules_load(args: argparse.Namespace, ctx: Context) -> int:
    summary = ctx.app(sync=False).patrols.load_rules(args.file)
    if args.json:
        emit(summary.as_dict())
    else:
        print(summary)
    return 0


def rules_show(args: argparse.Namespace, ctx: Context) -> int:
    rules = ctx.app(sync=False).patrols.obligations.rules()
    if args.json:
        emit([r.as_dict() for r in rules])
    else:
        for r in rules:
            rungs = "; ".join(f"+{g.after.text} → {', '.join(g.notify)}" for g in r.escalate)
            print(
                f"{r.id}: every {r.level} unit, {r.times}× per {r.every.text} by "
                f"{', '.join(r.roles)}; remind {', '.join(d.text for d in r.remind) or '-'}; "
                f"escalate {rungs or '-'}  ({r.timezone})"
            )
    return 0


def patrol_status(args: argparse.Namespace, ctx: Context) -> int:
    from engine.grid.visibility import ADMIN

    obligations = ctx.app(sync=False).patrols.obligations
    rows = obligations.periods(unit=args.unit or None, viewer=ADMIN)
    if args.short:
        rows = [r for r in rows if r["done"] < r["required"]]
    if args.json:
        emit(rows)
    else:
        for r in rows:
            print(
                f"{r['rule']:<14} {r['period']:<22} {r['unit']:<14} {r['unit_name']}  "
                f"{r['done']}/{r['required']}  {r['status']}"
            )
    return 0


def survey_import(args: argparse.Namespace, ctx: Context) -> int:
    result = ctx.app(sync=False).patrols.import_survey(args.file, args.source)
    if args.json:
        emit(result.as_dict())
    else:
        for problem in result.problems:
            what = "warning" if problem.warning else "error"
            print(f"{result.file}:{problem.line}: {what}: {problem.message}", file=sys.stderr)
        print(
            f"{result.file}: {result.imported} imported, {result.updated} updated, "
            f"{result.unchanged} unchanged, {len(result.problems)} problem(s)"
        )
    return 1 if any(not p.warning for p in result.problems) else 0


def survey_list(args: argparse.Namespace, ctx: Context) -> int:
    from engine.cli.report import assessment_config

    app = ctx.app(sync=False)
    config = assessment_config(args.weights, app.settings.source)
    items = app.assessment.findings(
        args.date_from, args.date_to, config, unit=args.unit, missed_only=args.missed
    )
    if args.json:
        emit(items)
    else:
        for i in items:
            how = (
                "MISSED by the grid"
                if i["missed"]
                else "found by " + ", ".join(f"{h['case']} ({h['how']})" for h in i["found_by"])
            )
            print(f"{i['ref']:<16} {i['unit']:<14} {i['found_on']}  {how}")
        missed = sum(1 for i in items if i["missed"])
        print(f"{len(items)} finding(s), {missed} missed by the grid")
    return 0
