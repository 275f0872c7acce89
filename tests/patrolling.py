"""Shared pieces of the patrol, survey and assessment tests: the app on a fake clock,
a channel that records what it is given, and rules files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from engine.app import App
from engine.clock import FixedClock
from engine.grid import load_grid
from engine.settings import Settings
from notifications.channels.base import Message, Recipient
from tests.conftest import Database
from tests.farmland import GRID_FILE, WORKFLOW_FILE

SH = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).parent.parent

# Villages weekly (reminder 1 day before the week ends, town leader told at once
# after it), towns monthly (district office told).
RULES = """\
patrols:
  - level: village
    every: week
    times: 1
    roles: [village.member, village.leader, group.member]
    remind: [1d]
    escalate:
      - after: 0m
        notify: [town.leader]
  - level: town
    every: month
    roles: [town.leader, town.office]
    escalate:
      - after: 0m
        notify: [district.office]
"""

VILLAGES = [
    "ddk-bq-fs",
    "ddk-bq-sl",
    "ddk-bq-xh",
    "ddk-js-bh",
    "ddk-js-lh",
    "ddk-td-jh",
    "ddk-td-sp",
]


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)  # type: ignore[misc, arg-type]


class Recorder:
    """A channel that keeps every message (address: the person id)."""

    name = "memo"

    def __init__(self) -> None:
        self.sent: list[Message] = []

    def address(self, recipient: Recipient) -> str | None:
        return recipient.id

    def send(self, message: Message, address: str) -> None:
        self.sent.append(message)

    def to(self, person: str) -> list[Message]:
        return [m for m in self.sent if m.recipient.id == person]


def make_app(database: Database, clock: FixedClock, *, grid: Any = GRID_FILE) -> App:
    app = App(Settings(database_url=database.url, workflows_dir=Path("workflows")), clock)
    load_grid(app.engine, grid)
    app.catalog.register_file(WORKFLOW_FILE)
    return app


def write_rules(tmp_path: Path, text: str = RULES, name: str = "patrols.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path
