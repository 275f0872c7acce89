"""Durations as administrators write them: ``30m``, ``2h``, ``3d``, ``3 working days``.

Chinese units too: ``30分钟``, ``2小时``, ``3天`` (calendar days), ``3个工作日``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from engine.errors import DurationError

__all__ = ["Duration", "DurationError", "parse_duration"]

_EXACT = re.compile(r"^\s*(\d+)\s*(m|min|h|d|分钟|小时|个小时|天|日)\s*$")
_WORKING = re.compile(r"^\s*(\d+)\s*(?:working\s+days?|个?工作日)\s*$")
_FRACTION = re.compile(r"^\s*(\d*\.\d+)\s*(m|min|h|d|分钟|小时|个小时|天|日)\s*$")
_UNIT_SECONDS = {
    "m": 60,
    "min": 60,
    "h": 3600,
    "d": 86400,
    "分钟": 60,
    "小时": 3600,
    "个小时": 3600,
    "天": 86400,
    "日": 86400,
}


@dataclass(frozen=True)
class Duration:
    """Either an exact span (``seconds``) or a count of working days."""

    kind: Literal["exact", "working_days"]
    amount: int  # seconds for "exact", days for "working_days"
    text: str

    @property
    def seconds(self) -> int:
        """Exact seconds; for working days the shortest span they can cover (N × 24 h)."""
        return self.amount if self.kind == "exact" else self.amount * 86400

    def __str__(self) -> str:
        return self.text


def parse_duration(value: object) -> Duration:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DurationError(
            f"expected a duration like '30m', '2h', '3d' or '3 working days', got {value!r}"
        )
    if isinstance(value, int):
        if value == 0:
            return Duration("exact", 0, "0m")
        raise DurationError(f"a duration needs a unit: write '{value}m', '{value}h' or '{value}d'")
    match = _EXACT.match(value)
    if match:
        count, unit = int(match.group(1)), match.group(2)
        return Duration("exact", count * _UNIT_SECONDS[unit], value.strip())
    match = _WORKING.match(value)
    if match:
        days = int(match.group(1))
        if days == 0:
            raise DurationError("'0 working days' is not a deadline; use '0m'")
        return Duration("working_days", days, value.strip())
    match = _FRACTION.match(value)
    if match:
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        exact = f"'{round(seconds / 60)}m'" if seconds % 60 == 0 else "whole minutes"
        raise DurationError(
            f"cannot read duration {value!r}: whole numbers only; write {exact} instead"
        )
    raise DurationError(
        f"cannot read duration {value!r}: write '30m', '2h', '3d' (calendar days) "
        "or '3 working days' (also 30分钟, 2小时, 3天, 3个工作日)"
    )
