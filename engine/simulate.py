"""Run a scripted scenario on a virtual clock and print its timeline.

Administrators check what their deadlines will do before deploying them::

    gengbao simulate farmland_violation --scenario workflows/scenarios/farmland_overdue.yaml

The scenario runs against a throwaway SQLite database in a temporary folder
(the real one is never touched), with the workflow file, the grid and the
calendar of the current settings.  Between scripted steps the clock jumps
from one due timer to the next (time skipping), so every reminder,
escalation and notification appears at the instant it would happen.

Scenario format::

    grid: config/grid/dadukou.yaml        # optional; default: settings, then the demo grid
    case: {at: 2026-09-18T10:00:00+08:00, unit: ddk-bq-xh-1, actor: p-bq-xh-1-member,
           data: {address: ..., land_type: 永久基本农田, source: 村级巡查}}
    steps:
      - {at: 2026-09-18T13:00:00+08:00, event: stop_fail, actor: p-bq-xh-1-member,
         payload: {stop_note: ...}}
      - {at: 2026-09-21T09:00:00+08:00}   # a pause: let the clock run to here
      - {at: 2026-09-21T10:00:00+08:00, action: supervise, actor: p-bq-leader,
         args: {note: 请限期处理, within: 3 working days}}   # an action that moves no state

An ``action`` step calls one of :data:`ACTIONS` by name with its ``args``
(``supervise``: note, within; ``supervise_reply``: note, supervision) as the actor.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from engine.app import App
from engine.clock import FixedClock
from engine.errors import ConfigError, EventRejected
from engine.grid.registry import load_grid
from engine.settings import Settings
from engine.store.tables import notifications
from engine.timers.rungs import level_label
from engine.yamlkit import (
    MapNode,
    Node,
    NodeReader,
    describe,
    did_you_mean,
    is_null,
    parse_yaml,
)

__all__ = ["ACTIONS", "Line", "Scenario", "load_scenario", "simulate"]

DEMO_GRID = Path("config/grid/dadukou.yaml")


@dataclass(frozen=True)
class Step:
    at: dt.datetime
    event: str | None = None
    actor: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    action: str | None = None
    args: dict[str, Any] = field(default_factory=dict)


def _supervise(app: App, case_id: str, actor: str, args: dict[str, Any]) -> str:
    _, notice = app.supervision.supervise(case_id, actor, args.get("note", ""), args.get("within"))
    return f"supervision {notice.id} due {notice.deadline_at.isoformat()}"


def _supervise_reply(app: App, case_id: str, actor: str, args: dict[str, Any]) -> str:
    _, notice = app.supervision.reply(case_id, actor, args.get("note", ""), args.get("supervision"))
    return f"supervision {notice.id} {notice.label}"


def _sign(app: App, case_id: str, actor: str, args: dict[str, Any]) -> str:
    app.countersigns.sign(case_id, actor, role=args.get("role"), note=args.get("note"))
    return _parties(app, case_id)


def _refuse(app: App, case_id: str, actor: str, args: dict[str, Any]) -> str:
    app.countersigns.refuse(case_id, actor, reason=args.get("reason", ""), role=args.get("role"))
    return _parties(app, case_id)


def _parties(app: App, case_id: str) -> str:
    parties = app.countersigns.parties(case_id)
    return ", ".join(f"{p.role} {p.status}" for p in parties) or "countersign done"


def _transfer(app: App, case_id: str, actor: str, args: dict[str, Any]) -> str:
    app.transfers.transfer(case_id, str(args.get("to", "")), actor, str(args.get("reason", "")))
    pending = app.transfers.pending(case_id)
    return f"transfer pending with {pending['to_unit'] if pending else '?'}"


def _transfer_accept(app: App, case_id: str, actor: str, args: dict[str, Any]) -> str:
    view = app.transfers.accept(case_id, actor, args.get("note"))
    return f"accepted: the case is now at {view.unit}"


def _transfer_return(app: App, case_id: str, actor: str, args: dict[str, Any]) -> str:
    view = app.transfers.return_(case_id, actor, str(args.get("reason", "")))
    return f"returned: the case stays at {view.unit}"


def _ack(app: App, case_id: str, actor: str, args: dict[str, Any]) -> str:
    app.assignments.ack(case_id, actor)
    return f"acknowledged (签收): {actor} is the assignee"


def _assign(app: App, case_id: str, actor: str, args: dict[str, Any]) -> str:
    to = str(args.get("to", ""))
    app.assignments.assign(case_id, to, actor)
    return f"assigned to {to}"


# Actions a scenario step may call by name: (app, case id, actor, args) → what it did.
ACTIONS: dict[str, Callable[[App, str, str, dict[str, Any]], str]] = {
    "supervise": _supervise,
    "supervise_reply": _supervise_reply,
    "sign": _sign,
    "refuse": _refuse,
    "transfer": _transfer,
    "transfer_accept": _transfer_accept,
    "transfer_return": _transfer_return,
    "ack": _ack,
    "assign": _assign,
}


@dataclass(frozen=True)
class Scenario:
    start: dt.datetime
    unit: str
    actor: str
    data: dict[str, Any]
    steps: list[Step]
    grid: Path | None = None


@dataclass(frozen=True)
class Line:
    at: dt.datetime
    what: str  # event | action | refused | reminder | deadline | escalation | notify | pause
    text: str

    def render(self, tz: str) -> str:
        local = self.at.astimezone(ZoneInfo(tz))
        return f"{local:%Y-%m-%d %a %H:%M}  {self.what:<10}  {self.text}"

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "what": self.what, "text": self.text}


_TOP_KEYS = ("grid", "case", "steps")
_CASE_KEYS = ("at", "unit", "actor", "data")
_STEP_KEYS = ("at", "event", "actor", "payload", "action", "args")


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario; raises :class:`ConfigError` with every problem at ``FILE:LINE:COL``."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read scenario: {exc}", file=name) from exc
    root, diagnostics = parse_yaml(text, name)
    reader = NodeReader(name, diagnostics)
    scenario = _scenario(reader, root) if root is not None else None
    if reader.diagnostics or scenario is None:
        ordered = sorted(set(reader.diagnostics))
        problems = [str(d) for d in ordered]
        raise ConfigError(
            "\n".join(problems),
            file=name,
            problems=problems,
            diagnostics=[d.as_dict() for d in ordered],
        )
    return scenario


def _scenario(reader: NodeReader, root: Node) -> Scenario | None:
    top = reader.mapping(root, "", allowed=_TOP_KEYS, required=("case",))
    if top is None:
        return None
    grid = reader.text(top.get("grid"), "grid", empty=False)
    case = reader.mapping(top.get("case"), "case", allowed=_CASE_KEYS, required=_CASE_KEYS[:3])
    steps = reader.list_of(top.get("steps"), "steps", lambda n, p: _step(reader, n, p))
    if case is None:
        return None
    start = reader.moment(case.get("at"), "case.at")
    unit = reader.text(case.get("unit"), "case.unit", empty=False)
    actor = reader.text(case.get("actor"), "case.actor", empty=False)
    data = _plain_mapping(reader, case.get("data"), "case.data")
    if start is None or unit is None or actor is None:
        return None
    earlier = start
    for i, (step, node) in enumerate(steps):
        if step.at < earlier:
            reader.report(node, f"steps[{i}].at", "steps must be in time order")
        earlier = max(earlier, step.at)
    return Scenario(
        start, unit, actor, data, [step for step, _ in steps], Path(grid) if grid else None
    )


def _step(reader: NodeReader, node: Node, path: str) -> tuple[Step, Node] | None:
    body = reader.mapping(node, path, allowed=_STEP_KEYS, required=("at",))
    if body is None:
        return None
    at_node = body.get("at")
    at = reader.moment(at_node, f"{path}.at")
    event = reader.identifier(body.get("event"), f"{path}.event", "trigger")
    actor = reader.text(body.get("actor"), f"{path}.actor", empty=False)
    payload = _plain_mapping(reader, body.get("payload"), f"{path}.payload")
    action_node = body.get("action")
    action = reader.identifier(action_node, f"{path}.action", "action")
    args = _plain_mapping(reader, body.get("args"), f"{path}.args")
    if action is not None and action not in ACTIONS:
        assert action_node is not None
        reader.report(
            action_node,
            f"{path}.action",
            f"unknown action {action!r}{did_you_mean(action, ACTIONS)} "
            f"(actions: {', '.join(ACTIONS)})",
        )
        action = None
    if action_node is not None and body.get("event") is not None:
        reader.report(body, path, "a step is an 'event' or an 'action', not both")
    if (body.get("event") is not None or action_node is not None) and body.get("actor") is None:
        reader.report(
            body, path, f"an {'event' if action_node is None else 'action'} needs an 'actor'"
        )
    if at is None or at_node is None:
        return None
    return Step(at, event, actor or "", payload, action, args), at_node


def _plain_mapping(reader: NodeReader, node: Node | None, path: str) -> dict[str, Any]:
    if is_null(node):
        return {}
    if not isinstance(node, MapNode):
        assert node is not None
        reader.report(node, path, f"expected a mapping of field names, got {describe(node)}")
        return {}
    return node.plain()


def simulate(settings: Settings, workflow_file: Path, scenario: Scenario) -> list[Line]:
    with tempfile.TemporaryDirectory(prefix="gengbao-sim-") as folder:
        clock = FixedClock(scenario.start)
        sim_settings = Settings(
            database_url=f"sqlite:///{Path(folder) / 'sim.db'}",
            workflows_dir=Path(folder) / "none",
            timezone=settings.timezone,
            grid_file=settings.grid_file,
            source=settings.source,
        )
        app = App(sim_settings, clock)
        try:
            return list(_run(app, clock, workflow_file, scenario))
        finally:
            app.close()


def _run(app: App, clock: FixedClock, workflow_file: Path, sc: Scenario) -> Iterator[Line]:
    load_grid(app.engine, sc.grid or app.settings.grid_file or DEMO_GRID)
    workflow = app.catalog.register_file(workflow_file).workflow
    outbox = _Outbox(app)
    case = app.cases.create_case(workflow, sc.unit, sc.actor, sc.data)
    yield Line(
        clock.now(),
        "event",
        f"create → {case.state} ({case.state_title}) by {sc.actor}; case {case.id}",
    )
    yield from outbox.new()
    for step in sc.steps:
        yield from _run_timers_until(app, clock, step.at, outbox)
        clock.set(step.at)
        if step.action is not None:
            try:
                done = ACTIONS[step.action](app, case.id, step.actor, step.args)
                yield Line(step.at, "action", f"{step.action} by {step.actor}: {done}")
            except EventRejected as exc:
                yield Line(step.at, "refused", f"{step.action} by {step.actor}: {exc}")
            yield from outbox.new()
            continue
        if step.event is None:
            yield Line(step.at, "pause", "")
            continue
        try:
            view = app.cases.submit_event(case.id, step.event, step.actor, step.payload)
            yield Line(
                step.at,
                "event",
                f"{step.event} → {view.state} ({view.state_title}) by {step.actor}",
            )
        except EventRejected as exc:
            yield Line(step.at, "refused", f"{step.event} by {step.actor}: {exc}")
        yield from outbox.new()


def _run_timers_until(
    app: App, clock: FixedClock, until: dt.datetime, outbox: _Outbox
) -> Iterator[Line]:
    """Jump from one due timer to the next up to *until*, firing each at its instant."""
    while (due := app.timers.next_due()) is not None and due <= until:
        clock.set(max(due, clock.now()))
        for f in app.timers.run_due():
            if f.outcome in ("fired", "failed"):  # (a failed one says why, and when again)
                yield Line(f.fired_at, f.kind, f"{f.state}{level_label(f.rung)}: {f.detail}")
        yield from outbox.new()


class _Outbox:
    """Reports the notifications queued since the last look."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.seen = 0

    def new(self) -> list[Line]:
        with self.app.engine.connect() as conn:
            rows = conn.execute(
                select(notifications)
                .where(notifications.c.id > self.seen)
                .order_by(notifications.c.id)
            ).all()
        if rows:
            self.seen = rows[-1].id
        return [
            Line(
                r.created_at,
                "notify",
                f"{r.kind} '{r.template}' → {', '.join(r.roles) or 'nobody'}",
            )
            for r in rows
        ]
