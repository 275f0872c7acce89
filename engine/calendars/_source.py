"""Where the official calendar comes from: the :class:`HolidaySource` seam.

A source answers two questions for a year: does it hold the State Council's
arrangement for that year at all, and which dates does that arrangement
name — holidays (off) and make-up working days (调休上班, on).  Every date a
source does not name follows the weekend rule (Monday–Friday on).

:class:`ChineseCalendarSource` reads the ``chinese-calendar`` package
(import name ``chinese_calendar``), which carries every arrangement from 2004
to its last release's year, make-up days included.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from typing import Protocol, runtime_checkable

__all__ = ["ChineseCalendarSource", "HolidaySource"]


@runtime_checkable
class HolidaySource(Protocol):
    """Official holiday arrangements, year by year."""

    @property
    def name(self) -> str:
        """Shown in warnings, e.g. ``chinese-calendar 1.11.0``."""
        ...

    def has_year(self, year: int) -> bool:
        """True when the official arrangement of *year* is known to this source."""
        ...

    def special_days(self, year: int) -> Mapping[date, bool]:
        """The dates of *year* the arrangement names: False = day off, True = working day.

        Empty for a year the source does not know.
        """
        ...


class ChineseCalendarSource:
    """:class:`HolidaySource` backed by the ``chinese-calendar`` package."""

    def __init__(self) -> None:
        # Imported by name: the package ships no type hints, and mypy versions
        # disagree on the error code an untyped import gets.
        chinese_calendar = importlib.import_module("chinese_calendar")
        holidays: Mapping[date, object] = chinese_calendar.holidays
        workdays: Mapping[date, object] = chinese_calendar.workdays
        by_year: dict[int, dict[date, bool]] = {}
        for day in holidays:
            by_year.setdefault(day.year, {})[day] = False
        for day in workdays:
            by_year.setdefault(day.year, {})[day] = True
        # The package refuses every year outside [first, last]; inside, a year
        # without any named day would still be "known" (none exists today).
        self._first, self._last = min(by_year), max(by_year)
        self._by_year = {year: MappingProxyType(days) for year, days in by_year.items()}
        self._name = f"chinese-calendar {chinese_calendar.__version__}"

    @property
    def name(self) -> str:
        return self._name

    @property
    def last_year(self) -> int:
        return self._last

    def has_year(self, year: int) -> bool:
        return self._first <= year <= self._last

    def special_days(self, year: int) -> Mapping[date, bool]:
        return self._by_year.get(year, MappingProxyType({}))

    def __repr__(self) -> str:
        return f"ChineseCalendarSource({self._first}..{self._last}, {self._name})"
