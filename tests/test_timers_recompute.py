"""Pending working-day timers follow the calendar when config/calendars/ changes.

December 2026: the 2027 arrangement is not in ``chinese-calendar`` yet, so a
10-working-day deadline that runs into 2027 counts weekdays only.  An
administrator then adds ``config/calendars/2027.yaml``; ``timers recompute``
(and ``gengbao serve`` at start, when the calendar data changed) moves the
pending deadline, reminders and rungs, records it in the case's history and
keeps the chain and the revisions consistent.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.api.serve import prepare
from engine.app import App
from engine.clock import FixedClock
from engine.store.tables import cases, history, overdue_facts, system_values, timers
from engine.timers.recompute import TRIGGER
from tests.support.databases import Database
from tests.support.farmland import CASE_DATA, LIFECYCLE, REPORTER, SH, UNIT, farmland_app, local
from tests.support.paths import GENGBAO, ROOT

ENTERED = datetime(2026, 12, 24, 10, 0, tzinfo=SH)  # Thursday
# Weekdays only: 12-25, 12-28..31, 2027-01-01, 01-04..07 → 24:00 of 01-07
OLD_DUE = datetime(2027, 1, 8, 0, 0, tzinfo=SH)
# With 01-01 and 01-04..08 off: 12-25, 12-28..31, 01-11..15 → 24:00 of 01-15
NEW_DUE = datetime(2027, 1, 16, 0, 0, tzinfo=SH)
HOLIDAYS_2027 = """\
    source: test arrangement
    days:
      - {date: 2027-01-01, working: false, name: 元旦}
      - {from: 2027-01-04, to: 2027-01-08, working: false, name: 测试假期}
"""


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A settings file whose calendars/ folder the test edits (empty at first)."""
    (tmp_path / "calendars").mkdir()
    file = tmp_path / "gengbao.yaml"
    file.write_text(f"workflows_dir: {ROOT / 'workflows'}\n", encoding="utf-8")
    return file


class Apps:
    """Each App is a process start: it reads config/calendars/ when built."""

    def __init__(self, database: Database, config: Path, clock: FixedClock) -> None:
        self.database, self.config, self.clock = database, config, clock
        self.built: list[App] = []

    def start(self) -> App:
        app = farmland_app(self.database.url, self.clock, source=self.config)
        self.built.append(app)
        return app

    def close(self) -> None:
        for app in self.built:
            app.close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(ENTERED - timedelta(hours=4))


@pytest.fixture
def apps(database: Database, config: Path, clock: FixedClock) -> Iterator[Apps]:
    made = Apps(database, config, clock)
    try:
        yield made
    finally:
        made.close()


def case_in_district_handling(app: App, clock: FixedClock) -> str:
    case_id = app.cases.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA).id
    for n in range(3):  # stop_fail, report, confirm → district_handling
        trigger, actor, payload, _ = LIFECYCLE[n]
        clock.set(ENTERED - timedelta(hours=2 - n))
        app.cases.submit_event(case_id, trigger, actor, payload)
    assert app.cases.get_case(case_id).state == "district_handling"
    return case_id


def pending(app: App, case_id: str) -> list[tuple[str, int | None, datetime, int]]:
    with app.engine.connect() as conn:
        rows = conn.execute(
            sa.select(timers)
            .where(timers.c.case_id == case_id, timers.c.status == "pending")
            .order_by(timers.c.id)
        ).all()
    return [(t.kind, t.rung, t.due_at, t.case_revision) for t in rows]


def expected(due: datetime, revision: int) -> list[tuple[str, int | None, datetime, int]]:
    # district_handling: remind [2d, 1d], escalate after 0m and 3d
    return [
        ("deadline", None, due, revision),
        ("reminder", None, due - timedelta(days=2), revision),
        ("reminder", None, due - timedelta(days=1), revision),
        ("escalation", 0, due, revision),
        ("escalation", 1, due + timedelta(days=3), revision),
    ]


def snapshot(app: App) -> list[list[Any]]:
    with app.engine.connect() as conn:
        return [
            [tuple(r) for r in conn.execute(sa.select(table).order_by(*table.primary_key))]
            for table in (cases, history, timers, system_values)
        ]


def add_2027(config: Path) -> None:
    (config.parent / "calendars" / "2027.yaml").write_text(
        textwrap.dedent(HOLIDAYS_2027), encoding="utf-8"
    )


def test_recompute_moves_the_deadline_into_the_new_calendar(
    apps: Apps, clock: FixedClock, config: Path
) -> None:
    before = apps.start()
    case_id = case_in_district_handling(before, clock)
    assert pending(before, case_id) == expected(OLD_DUE, 4)
    add_2027(config)
    clock.set(local(2026, 12, 28, 9))
    app = apps.start()  # a restart reads the new file

    untouched = snapshot(app)
    preview = app.recompute.run(dry_run=True)
    assert preview.dry_run and preview.cases_moved == 1 and len(preview.moved) == 5
    assert snapshot(app) == untouched  # a dry run writes nothing

    result = app.recompute.run()
    assert result.failed == () and result.checked == 1
    assert [(m.case, m.state, m.kind, m.rung, m.old, m.new) for m in result.moved] == [
        (case_id, "district_handling", kind, rung, old, new)
        for (kind, rung, old, _), (_, _, new, _) in zip(
            expected(OLD_DUE, 4), expected(NEW_DUE, 5), strict=True
        )
    ]
    assert pending(app, case_id) == expected(NEW_DUE, 5)
    view = app.cases.get_case(case_id)
    assert view.revision == 5 and view.state == "district_handling"
    last = app.cases.history(case_id)[-1]
    assert (last.seq, last.actor, last.trigger) == (5, "system", TRIGGER)
    assert (last.from_state, last.to_state) == ("district_handling", "district_handling")
    assert last.payload["deadline"] == {"old": utc(OLD_DUE), "new": utc(NEW_DUE)}
    assert len(last.payload["timers"]) == 5
    assert app.cases.verify(case_id).ok
    with app.engine.connect() as conn:
        deadline_at = conn.execute(
            sa.select(cases.c.deadline_at).where(cases.c.id == case_id)
        ).scalar_one()
    assert deadline_at == NEW_DUE

    again = app.recompute.run()
    assert again.moved == () and again.failed == ()
    assert app.cases.verify(case_id).ok and app.cases.get_case(case_id).revision == 5

    # Inside the holiday week the case is not overdue; at the new deadline it is.
    clock.set(OLD_DUE + timedelta(hours=1))
    assert app.timers.run_due() == []
    clock.set(NEW_DUE)
    fired = app.timers.run_due()
    assert [(f.kind, f.outcome) for f in fired] == [
        ("reminder", "fired"),
        ("reminder", "fired"),
        ("deadline", "fired"),
        ("escalation", "fired"),
    ]
    with app.engine.connect() as conn:
        facts = conn.execute(
            sa.select(overdue_facts.c.deadline_at, overdue_facts.c.rung)
            .where(overdue_facts.c.state == "district_handling")
            .order_by(overdue_facts.c.id)
        ).all()
    assert facts == [(NEW_DUE, None), (NEW_DUE, 0)]


def test_serve_start_recomputes_only_when_the_calendar_data_changed(
    apps: Apps, clock: FixedClock, config: Path
) -> None:
    first = apps.start()
    case_id = case_in_district_handling(first, clock)
    prepare(first)  # first start: no fingerprint stored yet; nothing to move
    assert pending(first, case_id) == expected(OLD_DUE, 4)
    with first.engine.connect() as conn:
        stored = conn.execute(sa.select(system_values.c.value)).scalars().all()
    assert stored == [first.calendar.fingerprint]

    same = apps.start()
    assert same.recompute.run_if_calendar_changed() is None  # unchanged: not even looked at

    # Comments do not change the calendar data.
    (config.parent / "calendars" / "local.yaml").write_text("# nothing yet\n", encoding="utf-8")
    assert apps.start().recompute.run_if_calendar_changed() is None

    add_2027(config)
    changed = apps.start()
    assert changed.calendar.fingerprint != first.calendar.fingerprint
    prepare(changed)
    assert pending(changed, case_id) == expected(NEW_DUE, 5)
    assert [e.trigger for e in changed.cases.history(case_id)][-1] == TRIGGER
    assert apps.start().recompute.run_if_calendar_changed() is None


def test_one_failing_case_does_not_stop_the_others(
    apps: Apps, clock: FixedClock, config: Path
) -> None:
    app = apps.start()
    broken = case_in_district_handling(app, clock)
    fine = case_in_district_handling(app, clock)
    add_2027(config)
    later = apps.start()
    real = later.recompute._plan

    def plan(conn: sa.Connection, row: Any) -> Any:
        if row.id == broken:
            raise RuntimeError("cannot compile the definition")
        return real(conn, row)

    later.recompute._plan = plan  # type: ignore[method-assign]
    result = later.recompute.run()
    assert [(f.case, f.error) for f in result.failed] == [(broken, "cannot compile the definition")]
    assert {m.case for m in result.moved} == {fine}
    assert pending(later, broken) == expected(OLD_DUE, 4)
    assert pending(later, fine) == expected(NEW_DUE, 5)
    # not stored: the next start tries the failed case again
    assert later.recompute.run_if_calendar_changed() is not None


def test_the_cli_prints_what_moved(
    apps: Apps, clock: FixedClock, config: Path, database: Database
) -> None:
    case_id = case_in_district_handling(apps.start(), clock)
    add_2027(config)
    env = {**os.environ, "GENGBAO_DATABASE_URL": database.url}

    def gengbao(*args: str) -> str:
        done = subprocess.run(
            [GENGBAO, "--config", str(config), "--now", "2026-12-28T09:00:00+08:00", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    dry = gengbao("timers", "recompute", "--dry-run").splitlines()
    assert dry[0] == (
        f"{case_id}  district_handling  deadline  2027-01-08 00:00 → 2027-01-16 00:00"
    )
    assert dry[-1] == (
        "5 timer(s) would move in 1 case(s) (1 open case(s) with pending timers checked); "
        "dry run: nothing written"
    )
    moved = json.loads(gengbao("timers", "recompute", "--json"))
    assert (moved["dry_run"], moved["cases_moved"], len(moved["moved"])) == (False, 1, 5)
    assert gengbao("timers", "recompute").splitlines() == [
        "0 timer(s) moved in 0 case(s) (1 open case(s) with pending timers checked)"
    ]
    assert "history intact (5 rows)" in gengbao("case", "verify", case_id)


def test_a_sweep_never_fires_or_drops_a_timer_moved_under_it(
    apps: Apps, clock: FixedClock, config: Path, backend: str
) -> None:
    """PostgreSQL: a sweep reads the due rows, then locks their cases; a recompute that
    commits in between moved the row (new due time, new revision).  The sweep must leave
    it for later, not fire it nor cancel it as stale.  (SQLite: the sweep holds the
    database from its first read, so nothing can commit in between.)"""
    if backend == "sqlite":
        pytest.skip("SQLite sweeps hold the write lock from their first read")
    case_id = case_in_district_handling(apps.start(), clock)
    add_2027(config)
    app = apps.start()
    sweeper = app.timers
    real_lock = sweeper._lock

    def lock_after_a_recompute(conn: sa.Connection, rows: Any) -> tuple[set[int], dict[str, Any]]:
        assert app.recompute.run().cases_moved == 1  # its own transaction, committed
        return real_lock(conn, rows)

    sweeper._lock = lock_after_a_recompute  # type: ignore[method-assign]
    clock.set(OLD_DUE + timedelta(hours=1))
    assert [f.kind for f in sweeper.run_due() if f.kind != "reminder"] == []
    sweeper._lock = real_lock  # type: ignore[method-assign]
    assert pending(app, case_id) == expected(NEW_DUE, 5)
    clock.set(NEW_DUE)
    assert [f.kind for f in sweeper.run_due()] == ["reminder", "reminder", "deadline", "escalation"]


WORKING_DAY_WORKFLOW = """\
workflow: wd_demo
title: 工作日催办
initial: discovered
fields:
  address: {type: string, required: true, title: 地址}
states:
  discovered:
    title: 已发现
    deadline:
      within: "5 working days"
      remind: ["2 working days", 1d]
      escalate:
        - after: "1 working day"
          notify: [town.leader]
  stopped:
    title: 已制止
    deadline:
      within: "3 working days"
      from: discovered
      remind: {every: 1d}
  closed:
    title: 已销号
    final: true
transitions:
  - trigger: stop
    from: discovered
    to: stopped
    roles: [group.member]
  - trigger: close
    from: stopped
    to: closed
    roles: [group.member]
"""


def test_working_day_reminders_rungs_and_from_anchors_are_recomputed(
    apps: Apps, clock: FixedClock, config: Path
) -> None:
    app = apps.start()
    app.catalog.register_text(WORKING_DAY_WORKFLOW, "wd_demo.yaml")
    clock.set(local(2026, 12, 30, 10))  # Wednesday
    waiting = app.cases.create_case("wd_demo", UNIT, REPORTER, {"address": "x"}).id
    stopped = app.cases.create_case("wd_demo", UNIT, REPORTER, {"address": "y"}).id
    clock.set(local(2026, 12, 30, 11))
    app.cases.submit_event(stopped, "stop", REPORTER)
    # weekdays only: 12-31, 01-01, 01-04, 01-05, 01-06
    assert [t[:3] for t in pending(app, waiting)] == [
        ("deadline", None, local(2027, 1, 7)),
        ("reminder", None, local(2027, 1, 5)),  # 2 working days before
        ("reminder", None, local(2027, 1, 6)),  # 1 day before
        ("escalation", 0, local(2027, 1, 9)),  # 1 working day after
    ]
    # from the first entry of discovered (12-30 10:00): 12-31, 01-01, 01-04
    assert [t[:3] for t in pending(app, stopped)] == [
        ("deadline", None, local(2027, 1, 5)),
        ("reminder", None, local(2026, 12, 31, 11)),  # every 1d from entering stopped
    ]
    add_2027(config)
    result = apps.start().recompute.run()
    assert result.failed == () and result.cases_moved == 2
    # 12-31, 01-11, 01-12, 01-13, 01-14
    assert [t[:3] for t in pending(app, waiting)] == [
        ("deadline", None, local(2027, 1, 15)),
        ("reminder", None, local(2027, 1, 13)),
        ("reminder", None, local(2027, 1, 14)),
        ("escalation", 0, local(2027, 1, 19)),  # Friday 01-15 + 1 working day = Monday
    ]
    # 12-31, 01-11, 01-12; the repeating reminder keeps its time, now until 01-13
    assert [t[:3] for t in pending(app, stopped)] == [
        ("deadline", None, local(2027, 1, 13)),
        ("reminder", None, local(2026, 12, 31, 11)),
    ]
    with app.engine.connect() as conn:
        limits = conn.execute(
            sa.select(timers.c.deadline_at).where(
                timers.c.case_id == stopped, timers.c.status == "pending"
            )
        ).scalars()
        assert set(limits) == {local(2027, 1, 13)}
    assert [m.kind for m in result.moved if m.case == stopped] == ["deadline"]
    assert app.cases.verify(waiting).ok and app.cases.verify(stopped).ok
