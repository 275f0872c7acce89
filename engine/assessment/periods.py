"""The period of an assessment as people name it: ``2026`` (a year), ``2026-09`` (a
month), ``2026-Q3`` (a quarter), or two dates; local calendar days, both ends included."""

from __future__ import annotations

import calendar
import datetime as dt
import re

from engine.errors import InvalidData, InvalidDateRange

__all__ = ["period_dates"]

_YEAR = re.compile(r"^(\d{4})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_HINT = "write 2026, 2026-09, 2026-Q3, or give from and to (YYYY-MM-DD)"


def period_dates(
    period: str | None, first: dt.date | None = None, last: dt.date | None = None
) -> tuple[dt.date, dt.date]:
    """(first day, last day) of *period*, or of *first* … *last* when no period is given."""
    if period is not None:
        if first is not None or last is not None:
            raise InvalidData({"period": "give either period, or from and to; not both"})
        return _named(period.strip())
    if first is None or last is None:
        missing = "from" if first is None else "to"
        raise InvalidData({missing: f"is required without a period ({_HINT})"})
    if last < first:
        raise InvalidDateRange(first, last)
    return first, last


def _named(text: str) -> tuple[dt.date, dt.date]:
    if m := _YEAR.match(text):
        year = int(m.group(1))
        if year >= 1:
            return dt.date(year, 1, 1), dt.date(year, 12, 31)
    elif m := _MONTH.match(text):
        year, month = int(m.group(1)), int(m.group(2))
        if year >= 1 and 1 <= month <= 12:
            end = calendar.monthrange(year, month)[1]
            return dt.date(year, month, 1), dt.date(year, month, end)
    elif m := _QUARTER.match(text):
        year, quarter = int(m.group(1)), int(m.group(2))
        if year >= 1:
            start = 3 * (quarter - 1) + 1
            end = calendar.monthrange(year, start + 2)[1]
            return dt.date(year, start, 1), dt.date(year, start + 2, end)
    raise InvalidData({"period": f"not a period: {text!r} ({_HINT})"})
