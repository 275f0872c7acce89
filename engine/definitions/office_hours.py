"""Office hours for reminders: ``"08:30-18:00"``, local time in the workflow's zone.

A reminder due outside office hours is delivered at the next start of office
hours (:mod:`engine.timers.schedule`).  ``"00:00-24:00"`` means always (no delay).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["OfficeHours", "Reminders", "parse_office_hours"]

_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_DAY = 24 * 3600


@dataclass(frozen=True, kw_only=True)
class OfficeHours:
    """From *start* (seconds after local midnight) up to, not including, *end*."""

    start: int
    end: int
    text: str

    def contains(self, second_of_day: int) -> bool:
        return self.start <= second_of_day < self.end

    @property
    def always(self) -> bool:
        return self.start == 0 and self.end == _DAY


@dataclass(frozen=True, kw_only=True)
class Reminders:
    """The ``reminders:`` setting (workflow level, or the global default)."""

    office_hours: OfficeHours | None = None


def parse_office_hours(value: object) -> OfficeHours:
    """``"HH:MM-HH:MM"`` (end after start; the end may be 24:00); ValueError says what is wrong."""
    if not isinstance(value, str):
        raise ValueError(f"expected office hours like '08:30-18:00', got {value!r}")
    match = _SPAN.match(value)
    if match is None:
        raise ValueError(
            f"cannot read office hours {value!r}: write 'HH:MM-HH:MM', e.g. '08:30-18:00'"
        )
    sh, sm, eh, em = (int(g) for g in match.groups())
    for hours, minutes, what in ((sh, sm, "start"), (eh, em, "end")):
        if minutes > 59 or hours > 24 or (hours == 24 and (minutes or what == "start")):
            raise ValueError(
                f"office hours {value!r}: {what} {hours}:{minutes:02d} is not a time of day "
                "(00:00 to 23:59; the end may be 24:00)"
            )
    start, end = sh * 3600 + sm * 60, eh * 3600 + em * 60
    if end <= start:
        raise ValueError(f"office hours {value!r}: the end must be after the start")
    return OfficeHours(start=start, end=end, text=value.strip())
