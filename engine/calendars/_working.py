"""The working-day calendar: which days are working days, and when deadlines fall.

A day is a working day when the override files say so, else when the
official arrangement (the :class:`HolidaySource`) names it as a make-up
working day, else when it is Monday–Friday and the arrangement does not name
it as a holiday.  Overrides win over the source.

Each year is turned once into a table (one flag per day plus a running count
of working days), so adding N working days is a binary search per year
crossed, whatever N is.  Tables are built on first use and shared by every
thread; nothing else in the calendar changes after construction, apart from
the record of years warned about.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from array import array
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.calendars._overrides import Overrides, load_overrides
from engine.calendars._source import ChineseCalendarSource, HolidaySource
from engine.clock import as_utc
from engine.errors import CalendarError
from engine.yamlkit.durations import Duration

__all__ = ["DEFAULT_TIMEZONE", "WorkingCalendar"]

DEFAULT_TIMEZONE = "Asia/Shanghai"
_ONE_DAY = timedelta(days=1)
_EPSILON = timedelta(microseconds=1)


@dataclass(frozen=True)
class _Year:
    year: int
    first: int  # ordinal of January 1st
    flags: bytes  # 1 = working day, one per day of the year
    cum: array[int]  # cum[i] = working days among days 0..i of the year
    known: bool  # the official arrangement (or an override declaring it complete) exists

    @property
    def total(self) -> int:
        return self.cum[-1]


class WorkingCalendar:
    """Working days per China's official calendar, plus ``config/calendars`` overrides.

    ``overrides_dir`` is read once, here; a bad file raises ``ConfigError``.
    ``source`` defaults to the ``chinese-calendar`` package.
    """

    def __init__(
        self, overrides_dir: Path | None = None, *, source: HolidaySource | None = None
    ) -> None:
        self._source: HolidaySource = source if source is not None else ChineseCalendarSource()
        self._overrides = (
            load_overrides(overrides_dir) if overrides_dir is not None else Overrides()
        )
        by_year: dict[int, dict[date, bool]] = {}
        for day, override in self._overrides.days.items():
            by_year.setdefault(day.year, {})[day] = override.working
        self._override_days: Mapping[int, Mapping[date, bool]] = by_year
        self._years: dict[int, _Year] = {}
        self._lock = threading.Lock()
        self._warned: set[int] = set()

    # ------------------------------------------------------------------ days

    @property
    def source(self) -> HolidaySource:
        return self._source

    @property
    def overrides(self) -> Overrides:
        return self._overrides

    @property
    def fingerprint(self) -> str:
        """A digest of the calendar data: the source (name and version) and the overrides'
        effective days and complete years.  Equal fingerprints count every deadline the
        same; comments or reordered entries in an override file do not change it."""
        parts = [self._source.name]
        parts += [
            f"{day.isoformat()}={int(o.working)}" for day, o in sorted(self._overrides.days.items())
        ]
        parts += [f"year={year}" for year in sorted(self._overrides.complete_years)]
        return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()

    def is_working_day(self, day: date) -> bool:
        table = self._year(day.year)
        return bool(table.flags[day.toordinal() - table.first])

    def add_working_days(self, day: date, n: int) -> date:
        """The *n*-th working day after *day* (before it when *n* < 0); *day* itself never counts.

        ``n == 0`` returns *day* unchanged.
        """
        if n == 0:
            return day
        table = self._year(day.year)
        index = day.toordinal() - table.first
        if n > 0:
            base, need = table.cum[index], n
            while base + need > table.total:
                need -= table.total - base
                table, base = self._year(table.year + 1), 0
            return date.fromordinal(table.first + bisect_left(table.cum, base + need))
        need = -n
        before = table.cum[index] - table.flags[index]  # working days earlier in the year
        while need > before:
            need -= before
            table = self._year(table.year - 1)
            before = table.total
        return date.fromordinal(table.first + bisect_left(table.cum, before - need + 1))

    # ------------------------------------------------------------- deadlines

    def due(self, start: datetime, duration: Duration, tz: str = DEFAULT_TIMEZONE) -> datetime:
        """When a clock started at *start* runs out, as an aware UTC datetime.

        Exact durations (``30m``, ``2h``, ``3d``) are added as elapsed time.
        ``N working days`` ends at 24:00 local (in *tz*) of the N-th working day
        after the local date of *start*; the start day never counts.
        """
        moment = as_utc(start)
        if duration.kind == "exact":
            return moment + timedelta(seconds=duration.amount)
        zone = _zone(tz)
        first = moment.astimezone(zone).date()
        last = self.add_working_days(first, _working_amount(duration))
        self._record(first + _ONE_DAY, last)
        return _end_of(last, zone)

    def before(self, due: datetime, duration: Duration, tz: str = DEFAULT_TIMEZONE) -> datetime:
        """A reminder *duration* before *due*, as an aware UTC datetime.

        Exact durations are subtracted.  For ``N working days`` the reminder
        falls at 24:00 local of the N-th working day before the due day (the
        local day *due* ends, or falls in when it is not at midnight), so
        ``before(due(s, N wd), M wd) == due(s, N-M wd)`` for M < N.
        """
        moment = as_utc(due)
        if duration.kind == "exact":
            return moment - timedelta(seconds=duration.amount)
        zone = _zone(tz)
        due_day = (moment.astimezone(zone) - _EPSILON).date()
        day = self.add_working_days(due_day, -_working_amount(duration))
        self._record(day + _ONE_DAY, due_day)
        return _end_of(day, zone)

    # --------------------------------------------------------------- warnings

    def unknown_years(self, start: datetime, end: datetime, tz: str = DEFAULT_TIMEZONE) -> set[int]:
        """Years of the local dates in ``[start, end)`` that have no official arrangement.

        A year counts as known when the source has it or an override file
        declares it complete (``years: [2027]``).
        """
        zone = _zone(tz)
        begin, finish = as_utc(start), as_utc(end)
        if finish <= begin:
            return set()
        first = begin.astimezone(zone).date()
        last = (finish.astimezone(zone) - _EPSILON).date()
        return self._unknown_between(first, last)

    def warnings_for(
        self, start: datetime, duration: Duration, tz: str = DEFAULT_TIMEZONE
    ) -> list[str]:
        """Warnings for the deadline ``due(start, duration, tz)``: one per unknown year counted."""
        if duration.kind == "exact":
            as_utc(start)
            return []
        first = as_utc(start).astimezone(_zone(tz)).date()
        last = self.add_working_days(first, _working_amount(duration))
        return [self._warning(year) for year in sorted(self._record(first + _ONE_DAY, last))]

    @property
    def warned_years(self) -> frozenset[int]:
        """Every unknown year a ``due``/``before`` computation has counted days in so far."""
        with self._lock:
            return frozenset(self._warned)

    # --------------------------------------------------------------- internals

    def _warning(self, year: int) -> str:
        return (
            f"no official holiday arrangement for {year} ({self._source.name}, no override "
            f"declaring it complete): working days in {year} are counted from weekends and "
            f"override days only; once it is announced, add it to config/calendars/ with "
            f"'years: [{year}]'"
        )

    def _unknown_between(self, first: date, last: date) -> set[int]:
        return {year for year in range(first.year, last.year + 1) if not self._year(year).known}

    def _record(self, first: date, last: date) -> set[int]:
        unknown = self._unknown_between(first, last) if first <= last else set()
        if unknown:
            with self._lock:
                self._warned |= unknown
        return unknown

    def _year(self, year: int) -> _Year:
        table = self._years.get(year)
        if table is None:
            table = self._build(year)
            with self._lock:
                table = self._years.setdefault(year, table)
        return table

    def _build(self, year: int) -> _Year:
        if not 1 <= year <= 9999:
            raise CalendarError(f"year {year} is outside the calendar (1..9999)", year=year)
        jan1 = date(year, 1, 1)
        first = jan1.toordinal()
        length = date(year, 12, 31).toordinal() - first + 1
        monday = jan1.weekday()  # 0 = Monday
        flags = bytearray(1 if (monday + i) % 7 < 5 else 0 for i in range(length))
        for special in (self._source.special_days(year), self._override_days.get(year, {})):
            for day, working in special.items():
                flags[day.toordinal() - first] = 1 if working else 0
        counts = array("H")
        running = 0
        for flag in flags:
            running += flag
            counts.append(running)
        known = self._source.has_year(year) or year in self._overrides.complete_years
        return _Year(year, first, bytes(flags), counts, known)

    def __repr__(self) -> str:
        files = len(self._overrides.files)
        return f"WorkingCalendar({self._source.name}, {files} override file(s))"


def _working_amount(duration: Duration) -> int:
    if duration.amount < 1:
        raise CalendarError(
            f"{duration.text!r}: a working-day duration needs at least 1 day",
            duration=duration.text,
        )
    return duration.amount


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarError(
            f"unknown time zone {name!r} (e.g. 'Asia/Shanghai')", zone=name
        ) from exc


def _end_of(day: date, zone: ZoneInfo) -> datetime:
    """24:00 local of *day* (= 00:00 of the next day) in *zone*, as UTC."""
    try:
        midnight = datetime.combine(day + _ONE_DAY, time(0), tzinfo=zone)
    except OverflowError as exc:
        raise CalendarError(f"{day} is the last day the calendar can represent") from exc
    return midnight.astimezone(UTC)
