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
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import select

from engine.app import App
from engine.clock import FixedClock
from engine.errors import ConfigError, EventRejected
from engine.grid import load_grid
from engine.settings import Settings
from engine.tables import notifications
from engine.timers.rungs import level_label

__all__ = ["Line", "Scenario", "load_scenario", "simulate"]

DEMO_GRID = Path("config/grid/dadukou.yaml")


@dataclass(frozen=True)
class Step:
    at: dt.datetime
    event: str | None = None
    actor: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


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
    what: str  # event | refused | reminder | deadline | escalation | notify | pause
    text: str

    def render(self, tz: str) -> str:
        local = self.at.astimezone(ZoneInfo(tz))
        return f"{local:%Y-%m-%d %a %H:%M}  {self.what:<10}  {self.text}"

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "what": self.what, "text": self.text}


def _moment(value: Any, where: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        moment = value
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(f"{where}: 'at' is not an ISO 8601 date-time: {value!r}") from None
    if moment.tzinfo is None:
        raise ConfigError(f"{where}: 'at' needs a UTC offset, e.g. {value}+08:00")
    return moment.astimezone(dt.UTC)


def load_scenario(path: str | Path) -> Scenario:
    name = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{name}: cannot read scenario: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("case"), dict):
        raise ConfigError(f"{name}: a scenario needs 'case' (at, unit, actor, data) and 'steps'")
    case = raw["case"]
    for key in ("at", "unit", "actor"):
        if key not in case:
            raise ConfigError(f"{name}: case: missing {key!r}")
    steps: list[Step] = []
    for i, item in enumerate(raw.get("steps") or []):
        where = f"{name}: steps[{i}]"
        if not isinstance(item, dict) or "at" not in item:
            raise ConfigError(f"{where}: each step needs 'at' (and 'event', 'actor' for an event)")
        unknown = set(item) - {"at", "event", "actor", "payload"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if item.get("event") and not item.get("actor"):
            raise ConfigError(f"{where}: an event needs an 'actor'")
        steps.append(
            Step(
                _moment(item["at"], where),
                item.get("event"),
                item.get("actor", ""),
                dict(item.get("payload") or {}),
            )
        )
    start = _moment(case["at"], f"{name}: case")
    if any(b.at < a.at for a, b in zip([Step(start), *steps], steps, strict=False)):
        raise ConfigError(f"{name}: steps must be in time order")
    grid = Path(raw["grid"]) if raw.get("grid") else None
    return Scenario(start, case["unit"], case["actor"], dict(case.get("data") or {}), steps, grid)


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
