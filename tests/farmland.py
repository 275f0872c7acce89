"""The farmland lifecycle used by several tests: a case walked from discovery to close-out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.app import App
    from engine.clock import Clock

ROOT = Path(__file__).parent.parent
WORKFLOW_FILE = ROOT / "workflows" / "farmland_violation.yaml"
GRID_FILE = ROOT / "config" / "grid" / "dadukou.yaml"

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
            "verify_note": "现场核实：违法建房，占用永久基本农田约 6 亩",
            "land_type": "永久基本农田",
            "area_m2": 4000,
            "violation_kind": "违法建房",
        },
        "joint_enforcement",  # ≥ 5 亩 of permanent basic farmland
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


def farmland_app(database_url: str, clock: Clock, **settings: Any) -> App:
    """An App on *database_url* with the demo grid and the farmland workflow loaded."""
    from engine.app import App
    from engine.grid import load_grid
    from engine.settings import Settings

    app = App(
        Settings(database_url=database_url, workflows_dir=Path("workflows"), **settings), clock
    )
    load_grid(app.engine, GRID_FILE)
    app.catalog.register_file(WORKFLOW_FILE)
    return app
