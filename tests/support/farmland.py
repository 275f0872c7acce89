"""The farmland lifecycle used by several tests: a case walked from discovery to close-out."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from tests.support.paths import GRID_FILE, ROOT, WORKFLOW_FILE

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from engine.app import App
    from engine.cases.service import CaseService
    from engine.clock import Clock

__all__ = [
    "CASE_DATA",
    "GRID_FILE",
    "LIFECYCLE",
    "REPORTER",
    "ROOT",
    "SH",
    "START",
    "UNIT",
    "WORKFLOW_FILE",
    "case_service",
    "farmland_app",
    "farmland_service",
    "local",
    "open_case",
    "step",
]

SH = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 9, 18, 10, 0, tzinfo=SH)  # a Friday, in office hours: the default clock

UNIT = "ddk-bq-xh-1"  # 八桥镇 / 新华村 / 新华村一组
REPORTER = "p-bq-xh-1-member"
CASE_DATA: dict[str, Any] = {
    "address": "新华村一组 12 号旁",
    "land_type": "永久基本农田",
    "area_m2": 4000,
    "source": "村级巡查",
}

# (trigger, actor, payload, state reached)
LIFECYCLE: list[tuple[str, str, dict[str, Any], str]] = [
    ("stop_fail", REPORTER, {"stop_note": "当事人拒绝停工"}, "stop_failed"),
    ("report", "p-bq-xh-leader", {"report_note": "制止无效，报告八桥镇"}, "reported"),
    (
        "confirm",
        "p-bq-leader",
        {
            "verify_note": "现场核实：违法建房，占用永久基本农田约 4.5 亩，当事人情绪激烈",
            "land_type": "永久基本农田",
            "area_m2": 3000,
            "violation_kind": "违法建房",
            "complex": True,
        },
        # < 5 亩 but hard to handle: the district handles it (joint_enforcement, ≥ 5 亩,
        # waits for a countersign first: tests/test_countersign.py walks that way)
        "district_handling",
    ),
    ("file_case", "p-ddk-office1", {"case_no": "大规资立〔2026〕1号"}, "filed"),
    (
        "decide",
        "p-ddk-planning",
        {"decision": "限期拆除，恢复原状", "rectify_kind": "拆除", "rectify_by": "2026-10-30"},
        "rectifying",
    ),
    ("rectified", REPORTER, {"demolition_record": "已拆除违法建筑"}, "rectify_check"),
    ("accept", "p-bq-office", {"check_note": "验收合格"}, "closed"),
]


def local(*args: int) -> datetime:
    """A moment in Shanghai: ``local(2026, 9, 18, 12)``."""
    return datetime(*args, tzinfo=SH)  # type: ignore[arg-type, misc]


def farmland_app(database_url: str, clock: Clock, *, grid: Any = GRID_FILE, **settings: Any) -> App:
    """An App on *database_url* with *grid* (the demo grid) and the farmland workflow loaded."""
    from engine.app import App
    from engine.grid.registry import load_grid
    from engine.settings import Settings

    app = App(
        Settings(database_url=database_url, workflows_dir=Path("workflows"), **settings), clock
    )
    load_grid(app.engine, grid)
    app.catalog.register_file(WORKFLOW_FILE)
    return app


def case_service(engine: Engine, clock: Clock) -> CaseService:
    """A case service on *engine* with an empty catalog (no grid loaded either)."""
    from engine.cases.catalog import Catalog
    from engine.cases.service import CaseService
    from notifications.templates import TemplateStore

    return CaseService(engine, Catalog(engine, clock, TemplateStore().check), clock)


def farmland_service(engine: Engine, clock: Clock) -> CaseService:
    """A case service with the demo grid and the farmland workflow loaded."""
    from engine.grid.registry import load_grid

    load_grid(engine, GRID_FILE)
    service = case_service(engine, clock)
    service.catalog.register_file(WORKFLOW_FILE)
    return service


def open_case(app: App, **data: Any) -> str:
    """A new farmland case on UNIT, reported by REPORTER; its id."""
    return app.cases.create_case("farmland_violation", UNIT, REPORTER, {**CASE_DATA, **data}).id


def step(app: App, case_id: str, n: int) -> None:
    """Take step *n* of LIFECYCLE on the case."""
    trigger, actor, payload, _ = LIFECYCLE[n]
    app.cases.submit_event(case_id, trigger, actor, payload)
