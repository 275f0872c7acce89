"""The farmland workflow with 签收 asked of ``discovered`` (within 30m) as well as of
``reported`` (within 2h, as bundled): the file the assignment and tasks tests run."""

from __future__ import annotations

from pathlib import Path

from tests.support.paths import WORKFLOW_FILE

__all__ = ["ACK_WORKFLOW", "ack_workflow_text", "write_ack_workflow"]

_DISCOVERED = """        - after: 24h                # 超时 24 小时：区专班办公室督办
          notify: [district.office, district.duty]
          template: supervise
"""
_ACK_DISCOVERED = """    ack:
      within: 30m
      remind: [15m]
      escalate:
        - after: 0m
          notify: [village.leader]
"""


def ack_workflow_text() -> str:
    text = WORKFLOW_FILE.read_text(encoding="utf-8")
    assert text.count(_DISCOVERED) == 1 and "    ack:\n      within: 2h" in text
    return text.replace(_DISCOVERED, _DISCOVERED + _ACK_DISCOVERED)


ACK_WORKFLOW = ack_workflow_text()


def write_ack_workflow(folder: Path) -> Path:
    """A workflows folder holding only the variant (for ``gengbao`` processes)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / WORKFLOW_FILE.name).write_text(ACK_WORKFLOW, encoding="utf-8")
    return folder
