"""Deadlines stay true when the world changes (issue 10, item 4): catch-up, office hours.

- A reminder that fires once its deadline has passed (the service was down)
  is skipped, not sent beside the overdue notice.
- Office hours (``reminders: {office_hours: ...}``, the workflow's value over
  the settings') move a reminder due outside them to the next start of
  office hours — a working day's, for a working-day deadline — when it is
  scheduled, so the row (and ``case show``) says when it will arrive.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.app import App
from engine.calendars import WorkingCalendar
from engine.clock import FixedClock
from engine.definitions.office_hours import OfficeHours, Reminders, parse_office_hours
from engine.errors import ConfigError
from engine.settings import load_settings
from engine.store.tables import notifications, overdue_facts, timers
from engine.timers.schedule import next_office_start
from tests.support.databases import Database
from tests.support.farmland import WORKFLOW_FILE, farmland_app, local, open_case, step
from tests.support.queries import rows

OFFICE = Reminders(office_hours=parse_office_hours("08:30-18:00"))


@pytest.fixture
def office_app(database: Database, clock: FixedClock) -> Iterator[App]:
    application = farmland_app(database.url, clock, reminders=OFFICE)
    try:
        yield application
    finally:
        application.close()


def reminders(app: App, case_id: str, state: str) -> list[datetime]:
    found = rows(app, timers, case_id=case_id, state=state, kind="reminder", status="pending")
    return sorted(t.due_at for t in found)


def to_district_handling(app: App, clock: FixedClock) -> str:
    """A case confirmed on Sunday 2026-09-20 09:00 (a make-up working day): 10 working
    days, due 2026-10-11 00:00 (the end of Saturday 10-10, a make-up working day)."""
    case_id = open_case(app)
    step(app, case_id, 0)
    step(app, case_id, 1)
    clock.set(local(2026, 9, 20, 9))
    step(app, case_id, 2)
    return case_id


# -- catch-up after downtime -----------------------------------------------------


def test_after_downtime_a_reminder_past_its_deadline_is_skipped_not_sent(
    app: App, clock: FixedClock
) -> None:
    case_id = open_case(app)  # reminders 11:00 and 11:30, deadline and rung 0 at 12:00
    clock.set(local(2026, 9, 18, 12, 30))  # down from 10:00 to 12:30
    fired = app.timers.run_due()

    assert [(f.kind, f.outcome, f.detail) for f in fired if f.kind == "reminder"] == [
        ("reminder", "fired", "skipped: deadline passed"),
        ("reminder", "fired", "skipped: deadline passed"),
    ]
    sent = rows(app, notifications, case_id=case_id)
    assert [(n.kind, n.template) for n in sent] == [("escalation", "overdue")]
    late = rows(app, timers, case_id=case_id, kind="reminder")
    assert {(t.status, t.detail) for t in late} == {("fired", "skipped: deadline passed")}
    facts = rows(app, overdue_facts, case_id=case_id)
    assert [(f.state, f.rung) for f in facts] == [("discovered", None), ("discovered", 0)]


def test_after_downtime_a_reminder_still_before_its_deadline_is_sent(
    app: App, clock: FixedClock
) -> None:
    case_id = open_case(app)
    clock.set(local(2026, 9, 18, 11, 45))  # both reminders late, the deadline still ahead
    app.timers.run_due()
    sent = rows(app, notifications, case_id=case_id)
    assert [n.kind for n in sent] == ["reminder", "reminder"]
    assert {t.detail for t in rows(app, timers, case_id=case_id, kind="reminder")} == {
        "reminder queued"
    }


# -- office hours ------------------------------------------------------------------


def test_without_office_hours_working_day_reminders_fall_at_midnight(
    app: App, clock: FixedClock
) -> None:
    case_id = to_district_handling(app, clock)
    assert reminders(app, case_id, "district_handling") == [
        local(2026, 10, 9, 0),
        local(2026, 10, 10, 0),
    ]


def test_office_hours_move_reminders_to_the_start_of_the_working_day(
    office_app: App, clock: FixedClock
) -> None:
    case_id = to_district_handling(office_app, clock)
    expected = [local(2026, 10, 9, 8, 30), local(2026, 10, 10, 8, 30)]  # Fri; Sat make-up day
    assert reminders(office_app, case_id, "district_handling") == expected
    shown = [
        t["due"] for t in office_app.timers.describe(case_id)["timers"] if t["kind"] == "reminder"
    ]
    assert [datetime.fromisoformat(d) for d in shown] == expected  # case show tells the truth
    deadline = rows(office_app, timers, case_id=case_id, state="district_handling", kind="deadline")
    assert [t.due_at for t in deadline] == [local(2026, 10, 11, 0)]  # never moved

    clock.set(local(2026, 10, 9, 8, 29))
    assert office_app.timers.run_due() == []
    clock.set(local(2026, 10, 9, 8, 30))
    assert [(f.kind, f.detail) for f in office_app.timers.run_due()] == [
        ("reminder", "reminder queued")
    ]


def test_urgent_reminders_and_escalations_are_never_delayed(
    office_app: App, clock: FixedClock
) -> None:
    clock.set(local(2026, 9, 18, 23, 0))  # discovered at night: within 2h
    case_id = open_case(office_app)
    assert reminders(office_app, case_id, "discovered") == [
        local(2026, 9, 19, 0, 0),
        local(2026, 9, 19, 0, 30),
    ]
    rungs = rows(office_app, timers, case_id=case_id, kind="escalation")
    assert [t.due_at for t in rungs] == [
        local(2026, 9, 19, 1),
        local(2026, 9, 19, 3),
        local(2026, 9, 20, 1),
    ]


def test_a_repeating_reminder_waits_for_office_hours(office_app: App, clock: FixedClock) -> None:
    case_id = open_case(office_app)
    step(office_app, case_id, 0)
    step(office_app, case_id, 1)  # → reported Friday 10:00: within 24h, every 8h
    # 18:00 is the end of office hours: the first reminder waits for Saturday 08:30
    assert reminders(office_app, case_id, "reported") == [local(2026, 9, 19, 8, 30)]
    clock.set(local(2026, 9, 19, 8, 30))
    office_app.timers.run_due()
    assert reminders(office_app, case_id, "reported") == []  # 16:30 is past the deadline


def test_the_workflow_value_wins_and_a_reminder_that_would_arrive_too_late_is_dropped(
    office_app: App, clock: FixedClock, tmp_path: Path
) -> None:
    text = WORKFLOW_FILE.read_text(encoding="utf-8")
    text = text.replace("remind: [2d, 1d]", "remind: [2d, 3h]")
    text = re.sub(
        r"^states:", 'reminders:\n  office_hours: "10:00-16:00"\nstates:', text, count=1, flags=re.M
    )
    changed = tmp_path / "farmland_violation.yaml"
    changed.write_text(text, encoding="utf-8")
    office_app.catalog.register_file(changed)

    case_id = to_district_handling(office_app, clock)
    # 2d before → Friday 10-09 00:00 → 10:00 (the workflow's hours, not the settings' 08:30);
    # 3h before → Saturday 21:00 → next working day Monday 10-12: after the deadline, dropped.
    assert reminders(office_app, case_id, "district_handling") == [local(2026, 10, 9, 10)]


# -- the next start of office hours ---------------------------------------------------


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return WorkingCalendar()


@pytest.mark.parametrize(
    ("moment", "working", "expected"),
    [
        (local(2026, 9, 21, 12), True, local(2026, 9, 21, 12)),  # inside: unchanged
        (local(2026, 9, 21, 7), True, local(2026, 9, 21, 8, 30)),  # before: same day
        (local(2026, 9, 21, 18), True, local(2026, 9, 22, 8, 30)),  # the end is closed
        (local(2026, 9, 18, 19), True, local(2026, 9, 20, 8, 30)),  # Fri → Sun make-up day
        (local(2026, 9, 19, 10), True, local(2026, 9, 20, 8, 30)),  # Saturday: not working
        (local(2026, 9, 19, 10), False, local(2026, 9, 19, 10)),  # calendar days: any day
        (local(2026, 9, 30, 19), True, local(2026, 10, 8, 8, 30)),  # over the National Day
        (local(2026, 9, 30, 19), False, local(2026, 10, 1, 8, 30)),
    ],
)
def test_next_office_start(
    calendar: WorkingCalendar, moment: datetime, working: bool, expected: datetime
) -> None:
    hours = parse_office_hours("08:30-18:00")
    found = next_office_start(
        moment.astimezone(UTC), hours, "Asia/Shanghai", calendar.is_working_day if working else None
    )
    assert found == expected
    assert found.tzinfo == UTC


def test_office_hours_values() -> None:
    assert parse_office_hours("8:30-18:00") == OfficeHours(
        start=8 * 3600 + 30 * 60, end=18 * 3600, text="8:30-18:00"
    )
    assert parse_office_hours("00:00-24:00").always
    for bad, message in [
        ("8:30-25:00", "end 25:00 is not a time of day"),
        ("18:00-08:30", "the end must be after the start"),
        ("09:00-09:00", "the end must be after the start"),
        ("24:00-24:00", "start 24:00 is not a time of day"),
        ("08:60-18:00", "start 8:60 is not a time of day"),
        ("morning", "write 'HH:MM-HH:MM'"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            parse_office_hours(bad)


# -- the global default in the settings file -----------------------------------------


def test_settings_default_office_hours(tmp_path: Path) -> None:
    file = tmp_path / "gengbao.yaml"
    file.write_text('reminders:\n  office_hours: "08:30-18:00"\n', encoding="utf-8")
    assert load_settings(file, env={}).reminders == OFFICE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'reminders:\n  office_hours: "8:30-25:00"\n',
            ":2:17: error: reminders.office_hours: office hours '8:30-25:00': end 25:00",
        ),
        ('reminders:\n  office_hours: "18:00-08:30"\n', "the end must be after the start"),
        (
            'reminders:\n  ofice_hours: "08:30-18:00"\n',
            ":2:3: error: reminders.ofice_hours: unknown key 'ofice_hours'; "
            "did you mean 'office_hours'?",
        ),
        (
            "timers:\n  retry: {max_attempts: 0}\n",
            ":2:25: error: timers.retry.max_attempts: expected a whole number ≥ 1, "
            "got a number (0)",
        ),
        (
            "timers:\n  retries: {}\n",
            ":2:3: error: timers.retries: unknown key 'retries'; did you mean 'retry'? "
            "(allowed: retry)",
        ),
    ],
)
def test_bad_settings_are_positioned_errors(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "gengbao.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(file, env={})
    assert message in str(info.value)
    assert str(info.value).startswith(f"{file}:")
