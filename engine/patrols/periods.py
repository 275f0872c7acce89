"""Patrol periods: calendar weeks (Monday–Sunday), calendar months, or runs of N days.

Periods are local calendar days in a time zone (the rules file's, else the
settings' ``timezone``): a period runs from 00:00 local of its first day to
24:00 local of its last day, stored in UTC.  Weeks start on Monday; months on
the 1st; ``N days`` periods are counted from Monday 2000-01-03, so
``every: 7 days`` is the same as ``every: week`` and the periods of a rule do
not depend on when it was loaded.  Periods are calendar periods: holidays and
make-up working days (调休) do not move them — only reminders written in
working days follow the working-day calendar.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from engine.clock import as_utc
from engine.errors import InvalidPeriod

__all__ = ["ANCHOR", "Every", "Period", "following", "parse_every", "period_of", "period_starting"]

ANCHOR = dt.date(2000, 1, 3)  # a Monday
_DAYS = re.compile(r"^\s*(\d+)\s*(?:d|days?|天)\s*$")
_ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Every:
    """How long one period lasts: ``week``, ``month`` or ``days`` (with ``days`` ≥ 1)."""

    kind: Literal["week", "month", "days"]
    days: int = 0

    @property
    def text(self) -> str:
        return f"{self.days}d" if self.kind == "days" else self.kind

    @property
    def shortest_seconds(self) -> int:
        """The shortest period this can make (28 days for a month)."""
        days = {"week": 7, "month": 28}.get(self.kind, self.days)
        return days * 86400

    def __str__(self) -> str:
        return self.text


def parse_every(value: object) -> Every:
    """``week``, ``month``, ``14 days``, ``14d``; raises :class:`InvalidPeriod` with the reason."""
    if isinstance(value, str) and value.strip() in ("week", "month"):
        return Every("week") if value.strip() == "week" else Every("month")
    match = _DAYS.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidPeriod(
            f"expected 'week', 'month' or 'N days' (e.g. '14 days'), got {value!r}", value
        )
    days = int(match.group(1))
    if days < 1:
        raise InvalidPeriod("a period needs at least 1 day", value)
    return Every("days", days)


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in UTC; ``first_day`` … ``last_day`` are the local dates it covers."""

    start: dt.datetime
    end: dt.datetime
    first_day: dt.date
    last_day: dt.date

    @property
    def label(self) -> str:
        """``2026-09-14~09-20``, ``2026-09`` for a whole month, ``2026-12-28~2027-01-03``."""
        a, b = self.first_day, self.last_day
        if a.day == 1 and (b + _ONE_DAY).day == 1 and a.month == b.month and a.year == b.year:
            return f"{a:%Y-%m}"
        if a.year != b.year:
            return f"{a:%Y-%m-%d}~{b:%Y-%m-%d}"
        return f"{a:%Y-%m-%d}~{b:%m-%d}"

    @property
    def label_zh(self) -> str:
        """``9月14日至9月20日``, ``2026年9月``."""
        a, b = self.first_day, self.last_day
        if a.day == 1 and (b + _ONE_DAY).day == 1 and a.month == b.month and a.year == b.year:
            return f"{a.year}年{a.month}月"
        if a.year != b.year:
            return f"{a.year}年{a.month}月{a.day}日至{b.year}年{b.month}月{b.day}日"
        return f"{a.month}月{a.day}日至{b.month}月{b.day}日"

    def contains(self, moment: dt.datetime) -> bool:
        return self.start <= as_utc(moment) < self.end


def _first_day(every: Every, day: dt.date) -> dt.date:
    if every.kind == "week":
        return day - dt.timedelta(days=day.weekday())
    if every.kind == "month":
        return day.replace(day=1)
    offset = (day - ANCHOR).days // every.days
    return ANCHOR + dt.timedelta(days=offset * every.days)


def _last_day(every: Every, first: dt.date) -> dt.date:
    if every.kind == "week":
        return first + dt.timedelta(days=6)
    if every.kind == "month":
        following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return following - _ONE_DAY
    return first + dt.timedelta(days=every.days - 1)


def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC)


def period_starting(every: Every, day: dt.date, tz: str) -> Period:
    """The period that contains local date *day*."""
    zone = ZoneInfo(tz)
    first = _first_day(every, day)
    last = _last_day(every, first)
    return Period(_midnight(first, zone), _midnight(last + _ONE_DAY, zone), first, last)


def period_of(every: Every, moment: dt.datetime, tz: str) -> Period:
    """The period that contains the instant *moment*."""
    return period_starting(every, as_utc(moment).astimezone(ZoneInfo(tz)).date(), tz)


def following(every: Every, period: Period, tz: str) -> Period:
    """The period right after *period*."""
    return period_starting(every, period.last_day + _ONE_DAY, tz)
