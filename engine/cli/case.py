"""``gengbao case create|import|event|show|list|history|verify``: cases."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cli import assign
from engine.cli.common import Context, Failure, add_json, add_viewer, emit, viewer_of, write_output
from engine.cli.countersign import add_case_commands as add_countersign_commands
from engine.cli.countersign import print_parties
from engine.cli.supervision import add_case_commands as add_supervision_commands
from engine.cli.supervision import open_supervisions
from engine.cli.transfers import add_case_commands, describe_pending

if TYPE_CHECKING:
    from engine.cases.batch import BatchResult
    from engine.cases.service import CaseView

IMPORT_FORMATS = ("jsonl", "csv", "geojson")  # engine.cases.imports.FORMATS, without importing it

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    case = commands.add_parser("case", help="cases").add_subparsers(
        dest="case_command", metavar="COMMAND", required=True
    )
    p = case.add_parser("create", help="open a case")
    p.add_argument("workflow", metavar="WORKFLOW")
    p.add_argument("--unit", required=True, metavar="UNIT_CODE")
    p.add_argument("--actor", required=True, metavar="PERSON_ID")
    p.add_argument("--data", type=_json_object, default={}, metavar="JSON")
    p.add_argument("--key", metavar="IDEMPOTENCY_KEY")
    add_json(p)
    p.set_defaults(handler=case_create)

    p = case.add_parser(
        "import",
        help="open many cases from a JSON Lines or CSV file",
        description="Open a case per line of FILE (JSON Lines or CSV with a header; - for "
        "stdin).  Every line is checked first; one bad line and nothing is written (exit 1), "
        "unless --skip-invalid: then the good lines are written and the bad ones reported "
        "(exit 3 when some were skipped).  Exit 0: every line written or replayed.",
    )
    p.add_argument("workflow", metavar="WORKFLOW")
    p.add_argument(
        "file",
        metavar="FILE",
        help=".jsonl/.ndjson, .csv or .geojson (features without a unit are placed by the "
        "grid's boundaries); - reads stdin",
    )
    p.add_argument("--actor", required=True, metavar="PERSON_ID")
    p.add_argument(
        "--format", choices=IMPORT_FORMATS, help="default: by the extension, else the content"
    )
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help="write the good lines and report the bad ones (default: all or nothing)",
    )
    add_json(p)
    p.set_defaults(handler=case_import)

    p = case.add_parser("event", help="submit an event (a trigger) to a case")
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("trigger", metavar="TRIGGER")
    p.add_argument("--actor", required=True, metavar="PERSON_ID")
    p.add_argument("--payload", type=_json_object, default={}, metavar="JSON")
    p.add_argument("--key", metavar="IDEMPOTENCY_KEY")
    p.add_argument(
        "--revision",
        type=int,
        metavar="N",
        help="refuse unless the case is at this revision",
    )
    p.add_argument(  # its old name: hidden, accepted for one release
        "--expect-revision",
        dest="revision",
        type=int,
        action=_Deprecated,
        help=argparse.SUPPRESS,
    )
    add_json(p)
    p.set_defaults(handler=case_event)

    p = case.add_parser("show", help="one case")
    p.add_argument("case_id", metavar="CASE_ID")
    add_viewer(p)
    add_json(p)
    p.set_defaults(handler=case_show)

    p = case.add_parser("list", help="cases, filtered")
    p.add_argument("--workflow")
    p.add_argument("--state")
    p.add_argument("--unit", help="this unit and everything below it")
    status = p.add_mutually_exclusive_group()
    status.add_argument("--open", dest="open", action="store_const", const=True)
    status.add_argument("--closed", dest="open", action="store_const", const=False)
    p.add_argument(
        "--overdue", action="store_const", const=True, help="open, its current deadline passed"
    )
    p.add_argument("--limit", type=int, default=None, help="default: 100 (table), all (csv, xlsx)")
    p.add_argument(
        "--format",
        choices=("table", "csv", "xlsx"),
        default="table",
        help="csv or xlsx: the case ledger (案件台账) with Chinese titles",
    )
    p.add_argument("--output", "-o", metavar="FILE", help="for csv and xlsx; default: stdout")
    add_viewer(p)
    add_json(p)
    p.set_defaults(handler=case_list)

    p = case.add_parser("history", help="a case's history, oldest first")
    p.add_argument("case_id", metavar="CASE_ID")
    add_viewer(p)
    add_json(p)
    p.set_defaults(handler=case_history)

    add_countersign_commands(case)  # sign, refuse, parties (会签)

    p = case.add_parser("verify", help="check a case's history hash chain")
    p.add_argument("case_id", metavar="CASE_ID")
    add_viewer(p)
    add_json(p)
    p.set_defaults(handler=case_verify)
    assign.add_case_commands(case)  # ack, assign (签收, 指派)

    add_case_commands(case)  # transfer, accept, return, transfers (engine/cli/transfers.py)
    add_supervision_commands(case)  # 督办: engine/cli/supervision.py


__all__ = ["add_commands"]


class _Deprecated(argparse.Action):
    """A hidden old name of a flag: stores like the new one and says which to use."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        new = "--" + self.dest.replace("_", "-")
        print(f"gengbao: {option_string} is deprecated; use {new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"not valid JSON: {exc.msg} at character {exc.pos}"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('expected a JSON object, e.g. \'{"address": "..."}\'')
    return value


PAGE = 1000  # the case service's largest page


def _print_case(view: CaseView, as_json: bool, ctx: Context) -> None:
    if as_json:
        emit(view.as_dict())
        return
    status = "open" if view.open else f"closed {ctx.local(view.closed_at)}"
    print(
        f"{view.id}  {view.workflow} v{view.version}  {view.state} ({view.state_title})  "
        f"unit {view.unit}  revision {view.revision}  {status}"
    )
    if "deadline_at" in view.extra:  # what this step just set: the new state's deadline
        deadline = view.extra["deadline_at"]
        print(f"  deadline: {ctx.local(deadline) if deadline else 'none in this state'}")
    for name, value in view.data.items():
        print(f"  {name}: {json.dumps(value, ensure_ascii=False)}")


def case_create(args: argparse.Namespace, ctx: Context) -> int:
    view = ctx.app().cases.create_case(args.workflow, args.unit, args.actor, args.data, args.key)
    _print_case(view, args.json, ctx)
    return 0


SKIPPED = 3  # exit status: --skip-invalid wrote the good lines, and skipped some


def case_import(args: argparse.Namespace, ctx: Context) -> int:
    from engine.cases.imports import assign_units, decode, parse
    from engine.errors import ImportFileError

    source = "<stdin>" if args.file == "-" else args.file
    try:
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise ImportFileError(f"{source}: cannot read: {exc.strerror}", file=source) from None
    app = ctx.app()
    fields = app.catalog.compiled_latest(args.workflow).workflow.fields
    parsed = parse(decode(raw, source), source, fields, args.format)
    if any(not item.unit for item in parsed.items):  # spots placed by the grid's boundaries
        parsed = assign_units(parsed, fields, app.grid.locator().locate_many)
    progress = _Progress() if not args.json and sys.stderr.isatty() else None
    result = app.cases.create_cases(
        args.workflow,
        parsed.items,
        args.actor,
        skip_invalid=args.skip_invalid,
        rejected=parsed.problems,
        progress=progress,
    )
    if progress is not None:
        progress.done()
    if args.json:
        emit({"file": source, **result.as_dict()})
    else:
        for problem in result.problems:
            print(problem.describe(source), file=sys.stderr)
        _print_import(source, result)
    if result.refused or (result.problems and not result.written and not result.replayed):
        return 1
    return SKIPPED if result.problems else 0


def _print_import(source: str, result: BatchResult) -> None:
    if result.refused:
        print(
            f"gengbao: error: {source}: nothing imported: {len(result.problems)} problem(s) "
            f"on {result.skipped} line(s); fix them, or pass --skip-invalid",
            file=sys.stderr,
        )
        return
    ids = [i.id for i in result.items if i.id is not None and not i.replayed]
    span = f" ({ids[0]} … {ids[-1]})" if len(ids) > 1 else f" ({ids[0]})" if ids else ""
    print(
        f"{source}: {result.written} case(s) imported{span}, {result.replayed} replayed, "
        f"{result.skipped} line(s) skipped"
    )


class _Progress:
    """One line on stderr, rewritten in place: ``importing: 12000/20000 (60%)``."""

    def __init__(self) -> None:
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        print(f"\rimporting: {done}/{total} ({percent}%)", end="", file=sys.stderr, flush=True)
        self.shown = True

    def done(self) -> None:
        if self.shown:
            print(file=sys.stderr)


def case_event(args: argparse.Namespace, ctx: Context) -> int:
    view = ctx.app().cases.submit_event(
        args.case_id, args.trigger, args.actor, args.payload, args.key, revision=args.revision
    )
    _print_case(view, args.json, ctx)
    return 0


def case_show(args: argparse.Namespace, ctx: Context) -> int:
    from engine.timers.rungs import level_label

    app = ctx.app()
    viewer = viewer_of(args.viewer)
    view = app.cases.get_case(args.case_id, viewer=viewer)
    timing = app.timers.describe(args.case_id, viewer=viewer)
    parties = app.countersigns.parties(args.case_id, viewer=viewer)
    timing.update(app.assignments.describe(args.case_id, viewer=viewer))
    pending = app.transfers.pending(args.case_id, viewer=viewer)
    notices = open_supervisions(args.case_id, viewer, ctx)
    if args.json:
        emit(
            {
                **view.as_dict(),
                **timing,
                "parties": [p.as_dict() for p in parties],
                "transfer": pending,
                "supervisions": notices,
            }
        )
        return 0
    _print_case(view, False, ctx)
    assign.print_assignment(timing["assignment"], ctx)
    if pending is not None:
        print(describe_pending(pending, ctx))
    print(f"  escalation level: {view.escalation_level}")
    print_parties(parties, ctx)
    for t in timing["timers"]:
        print(f"  pending {t['kind']}{level_label(t['rung'])} at {ctx.local(t['due'])}")
    for t in timing["failed_timers"]:
        then = (
            f"next attempt {ctx.local(t['next_attempt_at'])}"
            if t["next_attempt_at"]
            else "no more attempts"
        )
        what = f"{t['kind']}{level_label(t['rung'])}"
        print(
            f"  FAILED {what} (timer {t['id']}, due {ctx.local(t['due'])}): "
            f"{t['attempts']} attempt(s), {then}: {t['last_error']}"
        )
    for f in timing["overdue"]:
        what = "deadline passed" if f["rung"] is None else f"escalated,{level_label(f['rung'])}"
        print(
            f"  overdue in {f['state']}: {what} (deadline {ctx.local(f['deadline'])}, "
            f"at {ctx.local(f['at'])})"
        )
    for s in notices:
        print(
            f"  supervision {s['id']} open: by {s['issued_by']}, due "
            f"{ctx.local(s['deadline_at'])}: {s['note']}"
        )
    return 0


def case_list(args: argparse.Namespace, ctx: Context) -> int:
    from engine.cases.export import cases_csv, cases_xlsx
    from engine.cases.service import CaseFilter

    if args.limit is not None and args.limit < 1:
        raise Failure("--limit must be 1 or more", 2)
    app = ctx.app()
    ledger = args.format != "table"
    limit = args.limit if args.limit is not None else (None if ledger else 100)
    base = CaseFilter(
        workflow=args.workflow,
        state=args.state,
        unit=args.unit,
        open=args.open,
        overdue=args.overdue,
        limit=min(limit or PAGE, PAGE),
    )
    views: list[CaseView] = []
    while limit is None or len(views) < limit:  # page by id past the service's cap
        page = app.cases.list_cases(
            dataclasses.replace(base, after=views[-1].id if views else None),
            viewer=viewer_of(args.viewer),
        )
        views.extend(page)
        if len(page) < base.limit:
            break
    views = views[:limit] if limit is not None else views
    if ledger:
        tz = app.settings.timezone
        data = cases_xlsx(views, tz) if args.format == "xlsx" else cases_csv(views, tz)
        write_output(data, args.output)
        if args.output:
            print(f"{args.output}: {len(views)} case(s)", file=sys.stderr)
    elif args.json:
        emit([v.as_dict() for v in views])
    else:
        for v in views:
            print(
                f"{v.id}  {v.workflow} v{v.version}  {v.state:<18} {v.unit:<14} "
                f"rev {v.revision}  {'open' if v.open else 'closed'}"
            )
    return 0


def case_history(args: argparse.Namespace, ctx: Context) -> int:
    entries = ctx.app().cases.history(args.case_id, viewer=viewer_of(args.viewer))
    if args.json:
        emit([e.as_dict() for e in entries])
    else:
        for e in entries:
            print(
                f"{e.seq:>3}  {ctx.local(e.at, seconds=True)}  {e.actor:<18} {e.trigger:<16} "
                f"{e.from_state or '-'} → {e.to_state}"
            )
    return 0


def case_verify(args: argparse.Namespace, ctx: Context) -> int:
    report = ctx.app().cases.verify(args.case_id, viewer=viewer_of(args.viewer))
    if args.json:
        emit(report.as_dict())
    else:
        print(report)
    if not report.ok:
        raise Failure("history verification failed")
    return 0
