"""Shared pieces of the patrol, survey and assessment tests: a channel that records
what it is given, rules files, and moving a point on the map."""

from __future__ import annotations

from pathlib import Path

from engine.patrols.survey import metres_per_degree
from notifications.channels.base import Message, Recipient

__all__ = ["RULES", "VILLAGES", "Recorder", "shifted", "write_rules"]

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


def write_rules(tmp_path: Path, text: str = RULES, name: str = "patrols.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def shifted(lng: float, lat: float, east_m: float = 0, north_m: float = 0) -> tuple[float, float]:
    """The point *east_m* metres east and *north_m* north of (*lng*, *lat*)."""
    m_lng, m_lat = metres_per_degree(lat)
    return lng + east_m / m_lng, lat + north_m / m_lat
