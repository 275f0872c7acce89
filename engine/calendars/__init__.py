"""The working-day calendar (a seam: the holiday data source can be swapped).

    WorkingCalendar                 deadlines in working days and exact durations
    ├── HolidaySource               official arrangements, year by year (Protocol)
    │   └── ChineseCalendarSource   the ``chinese-calendar`` package (2004…its last year)
    └── Overrides                   ``config/calendars/*.yaml``, merged; they win

Semantics are fixed by ``docs/workflow-format.md`` §5: ``N working days``
end at 24:00 local of the N-th working day after the start's local date.
A year with no official data is still computed (weekends + known days +
overrides) and reported by :meth:`WorkingCalendar.unknown_years` /
:meth:`WorkingCalendar.warnings_for`; an override file listing the year under
``years:`` declares it complete.
"""

from __future__ import annotations

from engine.calendars._overrides import DayOverride, Overrides, load_overrides
from engine.calendars._source import ChineseCalendarSource, HolidaySource
from engine.calendars._working import DEFAULT_TIMEZONE, WorkingCalendar

__all__ = [
    "DEFAULT_TIMEZONE",
    "ChineseCalendarSource",
    "DayOverride",
    "HolidaySource",
    "Overrides",
    "WorkingCalendar",
    "load_overrides",
]
