"""The farmland workflow with 签收 asked of ``discovered`` (within 30m) and ``reported``
(within 2h): the bundled file as the assignment and tasks tests run it."""

from __future__ import annotations

from pathlib import Path

from tests.support.paths import WORKFLOW_FILE

__all__ = ["ACK_WORKFLOW", "ack_workflow_text", "write_ack_workflow"]

_DISCOVERED = """        - after: 24h                # 超时 24 小时：区专班办公室督办
          notify: [district.office, district.duty]
          template: supervise
"""
_REPORTED = """        - after: 72h                # 超时 3 天：分管副区长（一级网格长）
          notify: [district.leader, district.office]
          template: supervise
"""
_ACK_DISCOVERED = """    ack:
      within: 30m
      remind: [15m]
      escalate:
        - after: 0m
          notify: [village.leader]
"""
_ACK_REPORTED = """    ack:
      within: 2h
      remind: [1h]
      escalate:
        - after: 0m
          notify: [town.leader]
"""


def ack_workflow_text() -> str:
    text = WORKFLOW_FILE.read_text(encoding="utf-8")
    assert text.count(_DISCOVERED) == 1 and text.count(_REPORTED) == 1
    return text.replace(_DISCOVERED, _DISCOVERED + _ACK_DISCOVERED).replace(
        _REPORTED, _REPORTED + _ACK_REPORTED
    )


ACK_WORKFLOW = ack_workflow_text()


def write_ack_workflow(folder: Path) -> Path:
    """A workflows folder holding only the variant (for ``gengbao`` processes)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / WORKFLOW_FILE.name).write_text(ACK_WORKFLOW, encoding="utf-8")
    return folder
