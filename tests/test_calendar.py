"""The working-day calendar: China's 2026 arrangement, deadlines, overrides, unknown years."""

from __future__ import annotations

import importlib
import textwrap
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine.calendars
from engine.calendars import ChineseCalendarSource, HolidaySource, WorkingCalendar
from engine.errors import CalendarError, ConfigError
from engine.yamlkit.durations import Duration, parse_duration
from tests.support.properties import examples

CST = timezone(timedelta(hours=8))
SHANGHAI = ZoneInfo("Asia/Shanghai")
REPO = Path(__file__).resolve().parents[1]
chinese_calendar = importlib.import_module("chinese_calendar")  # the oracle; ships no types


def at(text: str) -> datetime:
    """An aware datetime from ISO text; ``+08:00`` when no offset is given."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=CST)


def d(text: str) -> date:
    return date.fromisoformat(text)


def wd(n: int) -> Duration:
    return parse_duration(f"{n} working days")


def local(moment: datetime) -> datetime:
    return moment.astimezone(CST)


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return WorkingCalendar()


def overrides(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "calendars"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


# ------------------------------------------------------------------ public surface


def test_exported_names() -> None:
    assert sorted(engine.calendars.__all__) == sorted(
        [
            "DEFAULT_TIMEZONE",
            "ChineseCalendarSource",
            "DayOverride",
            "HolidaySource",
            "Overrides",
            "WorkingCalendar",
            "load_overrides",
        ]
    )


def test_the_package_source_has_2026_and_satisfies_the_protocol() -> None:
    source = ChineseCalendarSource()
    assert isinstance(source, HolidaySource)
    assert source.has_year(2004) and source.has_year(2026)
    assert not source.has_year(2003)
    assert source.special_days(2026)[d("2026-10-10")] is True
    assert source.special_days(2026)[d("2026-10-01")] is False
    assert source.special_days(1990) == {}


# ------------------------------------------------------------------ 2026 arrangement

OFF_2026 = (
    ["2026-01-01", "2026-01-02", "2026-01-03"]
    + [f"2026-02-{day}" for day in range(15, 24)]
    + ["2026-04-04", "2026-04-05", "2026-04-06"]
    + [f"2026-05-0{day}" for day in range(1, 6)]
    + ["2026-06-19", "2026-06-20", "2026-06-21"]
    + ["2026-09-25", "2026-09-26", "2026-09-27"]
    + [f"2026-10-0{day}" for day in range(1, 8)]
    + ["2026-10-11", "2026-09-12"]  # Sunday after the make-up Saturday; an ordinary Saturday
)
WORKING_2026 = [
    "2026-01-04",  # Sunday, New Year make-up day
    "2026-02-14",  # Saturday, Spring Festival make-up days
    "2026-02-28",
    "2026-05-09",  # Saturday, Labour Day make-up day
    "2026-09-20",  # Sunday, National Day make-up day
    "2026-10-10",  # Saturday, National Day make-up day
    "2026-09-16",  # an ordinary Wednesday
    "2026-10-08",  # first day back after National Day
]


@pytest.mark.parametrize("day", OFF_2026)
def test_2026_days_off(cal: WorkingCalendar, day: str) -> None:
    assert not cal.is_working_day(d(day))


@pytest.mark.parametrize("day", WORKING_2026)
def test_2026_working_days(cal: WorkingCalendar, day: str) -> None:
    assert cal.is_working_day(d(day))


def test_2026_has_248_working_days(cal: WorkingCalendar) -> None:
    # 261 weekdays − 19 weekday holidays + 6 make-up days
    days = [d("2026-01-01") + timedelta(days=i) for i in range(365)]
    assert sum(cal.is_working_day(day) for day in days) == 248


def test_matches_the_package_on_every_day_it_knows(cal: WorkingCalendar) -> None:
    day = d("2004-01-01")
    while day.year <= 2026:
        assert cal.is_working_day(day) == chinese_calendar.is_workday(day), day
        day += timedelta(days=1)


# ------------------------------------------------------------------ worked examples


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        # docs §5: Fri 09-18 → Sun 09-20 (make-up), Mon 09-21, Tue 09-22
        ("2026-09-18T10:00", 3, "2026-09-23T00:00"),
        # docs §5: 10-01…07 off → Thu 10-08
        ("2026-09-30T15:00", 1, "2026-10-09T00:00"),
        # starting on a holiday: the holiday never counts, the start day neither
        ("2026-10-03T10:00", 1, "2026-10-09T00:00"),
        ("2026-10-03T10:00", 2, "2026-10-10T00:00"),  # Fri 10-09
        ("2026-10-03T10:00", 3, "2026-10-11T00:00"),  # Saturday 10-10 is a make-up day
        ("2026-10-03T10:00", 4, "2026-10-13T00:00"),  # Sunday 10-11 is not: Mon 10-12
        # starting on a make-up Saturday: the start day still does not count
        ("2026-10-10T09:00", 1, "2026-10-13T00:00"),
        # the day boundary is local: 23:59 and 00:01 are different start days
        ("2026-09-17T23:59", 3, "2026-09-22T00:00"),
        ("2026-09-18T00:01", 3, "2026-09-23T00:00"),
        ("2026-09-17T15:59+00:00", 3, "2026-09-22T00:00"),  # 09-17 23:59 in Shanghai
        ("2026-09-17T16:30+00:00", 3, "2026-09-23T00:00"),  # already 09-18 in Shanghai
        # across the Spring Festival and its make-up Saturdays
        ("2026-02-13T18:00", 1, "2026-02-15T00:00"),  # Sat 02-14 is a working day
        ("2026-02-14T18:00", 1, "2026-02-25T00:00"),  # 15…23 off → Tue 02-24
        ("2026-02-27T09:00", 1, "2026-03-01T00:00"),  # Sat 02-28 is a working day
    ],
)
def test_working_day_deadlines(cal: WorkingCalendar, start: str, n: int, due: str) -> None:
    result = cal.due(at(start), wd(n))
    assert result.tzinfo is UTC
    assert result == at(due)


def test_singular_and_chinese_spellings(cal: WorkingCalendar) -> None:
    start = at("2026-09-30T15:00")
    expected = at("2026-10-09T00:00")
    for text in ("1 working day", "1个工作日", "1工作日"):
        assert cal.due(start, parse_duration(text)) == expected


def test_working_days_in_another_time_zone(cal: WorkingCalendar) -> None:
    # 09-18 01:00 in Shanghai is 09-17 19:00 in Berlin: the start day is 09-17 there
    due = cal.due(at("2026-09-18T01:00"), wd(3), tz="Europe/Berlin")
    assert due == datetime(2026, 9, 22, tzinfo=ZoneInfo("Europe/Berlin"))
    assert due == at("2026-09-21T22:00+00:00")


def test_naive_start_and_unknown_zone_are_refused(cal: WorkingCalendar) -> None:
    with pytest.raises(ValueError, match="naive"):
        cal.due(datetime(2026, 9, 18, 10, 0), wd(1))
    with pytest.raises(ValueError, match="naive"):
        cal.due(datetime(2026, 9, 18, 10, 0), parse_duration("2h"))
    with pytest.raises(ValueError, match="naive"):
        cal.before(datetime(2026, 9, 18, 10, 0), wd(1))
    with pytest.raises(CalendarError, match="unknown time zone"):
        cal.due(at("2026-09-18T10:00"), wd(1), tz="Asia/Beijing")


def test_zero_working_days_is_refused(cal: WorkingCalendar) -> None:
    with pytest.raises(CalendarError, match="at least 1"):
        cal.due(at("2026-09-18T10:00"), Duration("working_days", 0, "0 working days"))


# ------------------------------------------------------------------ exact durations


@pytest.mark.parametrize(
    ("start", "text", "due"),
    [
        ("2026-09-30T15:00", "2h", "2026-09-30T17:00"),
        ("2026-09-30T23:45", "30m", "2026-10-01T00:15"),
        ("2026-09-30T15:00", "3d", "2026-10-03T15:00"),  # 3 × 24 h, holidays or not
        ("2026-10-03T15:00", "3d", "2026-10-06T15:00"),
        ("2026-09-30T15:00", "0m", "2026-09-30T15:00"),
    ],
)
def test_exact_durations_ignore_the_calendar(
    cal: WorkingCalendar, start: str, text: str, due: str
) -> None:
    result = cal.due(at(start), parse_duration(text))
    assert result.tzinfo is UTC
    assert result == at(due)


# ------------------------------------------------------------------ reminders


@pytest.mark.parametrize(
    ("due", "text", "reminder"),
    [
        ("2026-09-23T00:00", "1h", "2026-09-22T23:00"),
        ("2026-09-23T00:00", "1d", "2026-09-22T00:00"),
        # 3 working days from Fri 09-18 end with Tue 09-22; one before is Mon 09-21
        ("2026-09-23T00:00", "1 working day", "2026-09-22T00:00"),
        ("2026-09-23T00:00", "2 working days", "2026-09-21T00:00"),  # Sun 09-20 make-up
        ("2026-09-23T00:00", "3 working days", "2026-09-19T00:00"),  # Fri 09-18
        # due at the end of 10-08: one working day before is 09-30, over the holiday
        ("2026-10-09T00:00", "1 working day", "2026-10-01T00:00"),
        ("2026-10-09T00:00", "2 working days", "2026-09-30T00:00"),
        # a due time inside a day: that day is the due day
        ("2026-10-08T15:00", "1 working day", "2026-10-01T00:00"),
        # due on a holiday: the reminder falls at the end of the last working day before
        ("2026-10-05T12:00", "1 working day", "2026-10-01T00:00"),
    ],
)
def test_before(cal: WorkingCalendar, due: str, text: str, reminder: str) -> None:
    result = cal.before(at(due), parse_duration(text))
    assert result.tzinfo is UTC
    assert result == at(reminder)


def test_before_undoes_part_of_due(cal: WorkingCalendar) -> None:
    start = at("2026-09-18T10:00")
    due = cal.due(start, wd(10))
    for m in range(1, 10):
        assert cal.before(due, wd(m)) == cal.due(start, wd(10 - m))


# ------------------------------------------------------------------ add_working_days


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        ("2026-09-18", 0, "2026-09-18"),
        ("2026-09-18", 1, "2026-09-20"),
        ("2026-09-30", 1, "2026-10-08"),
        ("2026-10-08", -1, "2026-09-30"),
        ("2026-09-21", -1, "2026-09-20"),
        ("2026-09-20", -1, "2026-09-18"),
        ("2025-12-31", 1, "2026-01-04"),  # 01-01…03 off, Sunday 01-04 a make-up day
        ("2025-12-31", 248, "2026-12-31"),  # every working day of 2026
        ("2027-01-01", -248, "2026-01-04"),
        ("2026-01-04", -1, "2025-12-31"),
    ],
)
def test_add_working_days(cal: WorkingCalendar, day: str, n: int, expected: str) -> None:
    assert cal.add_working_days(d(day), n) == d(expected)


def test_add_working_days_far_ahead_agrees_with_counting(cal: WorkingCalendar) -> None:
    day, counted = d("2024-01-01"), 0
    while counted < 1000:
        day += timedelta(days=1)
        counted += cal.is_working_day(day)
    assert cal.add_working_days(d("2024-01-01"), 1000) == day
    assert cal.add_working_days(day, -1000) == d("2023-12-29")  # 2024-01-01 is a holiday


def test_add_working_days_beyond_the_calendar(cal: WorkingCalendar) -> None:
    with pytest.raises(CalendarError, match="outside the calendar"):
        cal.add_working_days(d("9999-12-01"), 100)


# ------------------------------------------------------------------ overrides

OVERRIDES_2027 = """\
    source: 国办发明电〔2026〕示例
    days:
      - {date: 2027-01-01, working: false, name: 元旦}
      - {date: 2027-02-07, working: true, name: 春节调休}
    """


def test_overrides_add_a_holiday_and_a_make_up_day(tmp_path: Path) -> None:
    plain = WorkingCalendar()
    custom = WorkingCalendar(overrides(tmp_path, y2027=OVERRIDES_2027))
    new_year_eve = at("2026-12-31T10:00")
    assert plain.due(new_year_eve, wd(1)) == at("2027-01-02T00:00")  # Fri 01-01
    assert custom.due(new_year_eve, wd(1)) == at("2027-01-05T00:00")  # Mon 01-04
    friday = at("2027-02-05T10:00")
    assert plain.due(friday, wd(1)) == at("2027-02-09T00:00")  # Mon 02-08
    assert custom.due(friday, wd(1)) == at("2027-02-08T00:00")  # Sun 02-07
    assert custom.overrides.days[d("2027-02-07")].name == "春节调休"


def test_overrides_win_over_the_package(tmp_path: Path) -> None:
    folder = overrides(
        tmp_path,
        local="""\
        days:
          - {date: 2026-10-07, working: true, name: 值班}
          - {date: 2026-10-10, working: false}
          - {from: 2026-10-12, to: 2026-10-13, working: false, name: 区庆}
        """,
    )
    custom = WorkingCalendar(folder)
    assert custom.is_working_day(d("2026-10-07"))
    assert not custom.is_working_day(d("2026-10-10"))
    assert custom.due(at("2026-09-30T15:00"), wd(1)) == at("2026-10-08T00:00")
    assert custom.due(at("2026-10-08T09:00"), wd(1)) == at("2026-10-10T00:00")  # Fri 10-09
    assert custom.due(at("2026-10-09T09:00"), wd(1)) == at("2026-10-15T00:00")  # Wed 10-14


def test_several_files_merge(tmp_path: Path) -> None:
    folder = overrides(
        tmp_path,
        a="days:\n  - {date: 2027-01-01, working: false}\n",
        b="days:\n  - {date: 2027-01-04, working: false}\n",
    )
    custom = WorkingCalendar(folder)
    assert not custom.is_working_day(d("2027-01-01"))
    assert not custom.is_working_day(d("2027-01-04"))
    assert custom.overrides.files == (str(folder / "a.yaml"), str(folder / "b.yaml"))


def test_shipped_local_file_changes_nothing_in_2026() -> None:
    shipped = WorkingCalendar(REPO / "config" / "calendars")
    plain = WorkingCalendar()
    assert shipped.overrides.days == {}
    assert shipped.overrides.complete_years == frozenset()
    for i in range(365):
        day = d("2026-01-01") + timedelta(days=i)
        assert shipped.is_working_day(day) == plain.is_working_day(day)


def test_comment_only_and_empty_days_files_are_allowed(tmp_path: Path) -> None:
    folder = overrides(tmp_path, a="# nothing yet\n", b="days:\n", c="days: []\n")
    assert WorkingCalendar(folder).overrides.days == {}


def test_missing_overrides_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        WorkingCalendar(tmp_path / "nowhere")


BAD_FILES = [
    ("dayz: []\n", 1, "unknown key 'dayz'; did you mean 'days'?"),
    ("days:\n  - {date: 2027-01-01, working: yes}\n", 2, "expected true or false"),
    ("days:\n  - {date: 2027-01-01}\n", 2, "missing required key 'working'"),
    ("days:\n  - {date: tomorrow, working: false}\n", 2, "expected a date like 2027-01-01"),
    ("days:\n\n  - {date: 2027-13-01, working: false}\n", 3, "bad value '2027-13-01'"),
    ("days:\n  - {date: 2027-02-30, working: false}\n", 2, "bad value '2027-02-30'"),
    ("days:\n  - {date: 2027-01-01T08:00:00, working: false}\n", 2, "without a time"),
    ("days:\n  - {date: 2027-01-01, working: false, nmae: x}\n", 2, "did you mean 'name'?"),
    ("days:\n  - {from: 2027-01-03, to: 2027-01-01, working: false}\n", 2, "is before"),
    ("days:\n  - {from: 2027-01-03, working: false}\n", 2, "needs both 'from' and 'to'"),
    (
        "days:\n  - {date: 2027-01-01, from: 2027-01-01, to: 2027-01-02, working: false}\n",
        2,
        "not both",
    ),
    ("days:\n  - 2027-01-01\n", 2, "expected a mapping (date, from, to, working, name)"),
    ("days: 2027-01-01\n", 1, "expected a list"),
    (
        "years: [2027, twenty]\n",
        1,
        "expected a whole number from 1900 to 9998, got text ('twenty')",
    ),
    ("- 2027-01-01\n", 1, "expected a mapping"),
    ("days: [\n", 2, "YAML syntax"),
    ("source: 1\n", 1, "source: expected non-empty text"),
    (
        "days:\n  - {date: 2027-01-01, working: false}\n  - {date: 2027-01-01, working: true}\n",
        3,
        "already set at",
    ),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD_FILES)
def test_bad_override_file(tmp_path: Path, text: str, line: int, message: str) -> None:
    folder = overrides(tmp_path, bad=text)
    with pytest.raises(ConfigError) as caught:
        WorkingCalendar(folder)
    error = caught.value
    assert f"{folder / 'bad.yaml'}:{line}:" in str(error)
    assert message in str(error)
    assert error.details["diagnostics"][0]["line"] == line


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    folder = overrides(
        tmp_path,
        a="days:\n  - {date: 2027-01-01, working: no}\n  - {date: 2027-01-02}\n",
        b="days:\n  - {date: 2027-01-03, working: false, nmae: x}\n",
    )
    with pytest.raises(ConfigError) as caught:
        WorkingCalendar(folder)
    lines = str(caught.value).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{folder / 'a.yaml'}:2:")
    assert lines[1].startswith(f"{folder / 'a.yaml'}:3:")
    assert lines[2].startswith(f"{folder / 'b.yaml'}:2:")


def test_a_date_set_in_two_files_names_both(tmp_path: Path) -> None:
    folder = overrides(
        tmp_path,
        a="days:\n  - {date: 2027-01-01, working: false}\n",
        b="days:\n\n  - {from: 2026-12-31, to: 2027-01-01, working: false}\n",
    )
    with pytest.raises(ConfigError) as caught:
        WorkingCalendar(folder)
    assert str(caught.value) == (
        f"{folder / 'b.yaml'}:3:5: error: days[0]: "
        f"2027-01-01 is already set at {folder / 'a.yaml'}:2"
    )


# ------------------------------------------------------------------ unknown years


def test_a_deadline_in_an_unknown_year_is_computed_and_warned() -> None:
    cal = WorkingCalendar()
    start = at("2030-03-01T10:00")  # a Friday
    due = cal.due(start, wd(3))
    assert due == at("2030-03-07T00:00")  # Mon 04, Tue 05, Wed 06: weekends still skipped
    assert cal.unknown_years(start, due) == {2030}
    assert cal.warned_years == {2030}
    (warning,) = cal.warnings_for(start, wd(3))
    assert "2030" in warning and "years: [2030]" in warning


def test_declaring_a_year_complete_silences_the_warning(tmp_path: Path) -> None:
    folder = overrides(
        tmp_path,
        y2030="""\
        years: [2030]
        days:
          - {date: 2030-03-04, working: false, name: 示例}
        """,
    )
    cal = WorkingCalendar(folder)
    start = at("2030-03-01T10:00")
    due = cal.due(start, wd(3))
    assert due == at("2030-03-08T00:00")
    assert cal.unknown_years(start, due) == set()
    assert cal.warnings_for(start, wd(3)) == []
    assert cal.warned_years == frozenset()


def test_unknown_years_counts_only_the_days_in_the_span() -> None:
    cal = WorkingCalendar()
    # Wed 12-30 + 1 working day = Thu 12-31; due at 2027-01-01 00:00 touches no 2027 day
    start = at("2026-12-30T15:00")
    due = cal.due(start, wd(1))
    assert due == at("2027-01-01T00:00")
    assert cal.unknown_years(start, due) == set()
    assert cal.warnings_for(start, wd(1)) == []
    assert cal.warned_years == frozenset()
    # from Thu 12-31 the first working day is in 2027
    assert cal.warnings_for(at("2026-12-31T15:00"), wd(1)) != []
    assert cal.warned_years == {2027}
    assert cal.unknown_years(at("2026-06-01T00:00"), at("2026-07-01T00:00")) == set()
    assert cal.unknown_years(at("2003-12-01T00:00"), at("2028-01-02T00:00")) == {
        2003,
        2027,
        2028,
    }
    assert cal.unknown_years(at("2028-01-02T00:00"), at("2003-12-01T00:00")) == set()


def test_exact_durations_never_warn() -> None:
    cal = WorkingCalendar()
    assert cal.due(at("2030-03-01T10:00"), parse_duration("3d")) == at("2030-03-04T10:00")
    assert cal.warnings_for(at("2030-03-01T10:00"), parse_duration("3d")) == []
    assert cal.warned_years == frozenset()


def test_reminders_record_unknown_years_too() -> None:
    cal = WorkingCalendar()
    assert cal.before(at("2030-03-07T00:00"), wd(1)) == at("2030-03-06T00:00")
    assert cal.warned_years == {2030}


# ------------------------------------------------------------------ the source seam


class FlatSource:
    """A source that knows 2026 and makes every Monday in it a holiday."""

    name = "flat test source"

    def has_year(self, year: int) -> bool:
        return year == 2026

    def special_days(self, year: int) -> Mapping[date, bool]:
        if year != 2026:
            return {}
        jan1 = date(2026, 1, 1)
        days = (jan1 + timedelta(days=i) for i in range(365))
        return {day: False for day in days if day.weekday() == 0}


def test_another_source_plugs_in() -> None:
    source = FlatSource()
    assert isinstance(source, HolidaySource)
    cal = WorkingCalendar(source=source)
    assert cal.due(at("2026-09-18T10:00"), wd(1)) == at("2026-09-23T00:00")  # Tue 09-22
    assert cal.is_working_day(d("2026-10-01"))  # this source knows no National Day
    assert cal.unknown_years(at("2025-12-01T00:00"), at("2026-02-01T00:00")) == {2025}
    assert "flat test source" in cal.warnings_for(at("2025-12-01T00:00"), wd(1))[0]


# ------------------------------------------------------------------ threads


def test_concurrent_use_gives_the_same_answers() -> None:
    starts = [at("2024-01-01T09:00") + timedelta(hours=37 * i) for i in range(400)]
    expected = [WorkingCalendar().due(s, wd(1 + i % 30)) for i, s in enumerate(starts)]
    shared = WorkingCalendar()
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(
            pool.map(lambda pair: shared.due(pair[1], wd(1 + pair[0] % 30)), enumerate(starts))
        )
    assert got == expected


# ------------------------------------------------------------------ properties

STARTS = st.datetimes(
    min_value=datetime(2024, 1, 1),
    max_value=datetime(2026, 12, 31, 23, 59),
    timezones=st.just(SHANGHAI),
)


@settings(max_examples=examples(300), deadline=None)
@given(start=STARTS, n=st.integers(min_value=1, max_value=30))
def test_due_lands_after_exactly_n_working_days(
    cal: WorkingCalendar, start: datetime, n: int
) -> None:
    due = cal.due(start, wd(n))
    assert due.tzinfo is UTC
    due_local = due.astimezone(SHANGHAI)
    assert (due_local.hour, due_local.minute, due_local.second, due_local.microsecond) == (
        0,
        0,
        0,
        0,
    )
    first, last = start.astimezone(SHANGHAI).date(), due_local.date() - timedelta(days=1)
    assert last > first
    assert cal.is_working_day(last)
    span = [first + timedelta(days=i) for i in range(1, (last - first).days + 1)]
    assert sum(cal.is_working_day(day) for day in span) == n
    later = cal.due(start + timedelta(hours=13), wd(n))
    assert later >= due


@settings(max_examples=examples(200), deadline=None)
@given(start=STARTS, n=st.integers(min_value=2, max_value=30), data=st.data())
def test_before_is_the_inverse_of_due(
    cal: WorkingCalendar, start: datetime, n: int, data: st.DataObject
) -> None:
    m = data.draw(st.integers(min_value=1, max_value=n - 1))
    assert cal.before(cal.due(start, wd(n)), wd(m)) == cal.due(start, wd(n - m))


@settings(max_examples=examples(200), deadline=None)
@given(day=st.dates(date(2004, 1, 1), date(2026, 12, 31)), n=st.integers(-400, 400))
def test_add_working_days_round_trips(cal: WorkingCalendar, day: date, n: int) -> None:
    moved = cal.add_working_days(day, n)
    if n == 0:
        assert moved == day
        return
    assert cal.is_working_day(moved)
    assert (moved > day) == (n > 0)
    if cal.is_working_day(day):
        assert cal.add_working_days(moved, -n) == day
