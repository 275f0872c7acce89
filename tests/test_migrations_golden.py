"""Old data keeps working: a golden database of every schema revision, upgraded to head.

Each ``tests/data/migrations/<revision>.sql`` holds what a database at that
revision held (``tests/support/migrations.py`` wrote it, with the columns
that revision had): a case waiting in ``stop_failed``.  It is loaded into
SQLite and PostgreSQL, upgraded with ``engine.store.db.upgrade``, opened with
``App``, and the case must show, verify, take the next event and verify again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.app import App
from engine.clock import FixedClock
from engine.settings import Settings
from engine.store.db import make_engine, schema_heads
from engine.store.tables import cases, history, timers
from tests.support.databases import Database
from tests.support.farmland import CASE_DATA, LIFECYCLE, REPORTER, UNIT
from tests.support.migrations import CASE_ID, STOPPED, golden_file, load_golden, revisions
from tests.support.queries import rows

REVISIONS = revisions()
REPORT = LIFECYCLE[1]  # the village leader reports: stop_failed → reported


@pytest.fixture(params=REVISIONS)
def revision(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def upgraded(empty_database: Database, revision: str, tmp_path: Path) -> Iterator[App]:
    """The golden database of *revision*, upgraded to head, opened with an App."""
    loader = make_engine(empty_database.url)
    try:
        load_golden(loader, revision)
    finally:
        loader.dispose()
    clock = FixedClock(STOPPED + timedelta(minutes=40))  # 10:00 in Shanghai, same day
    settings = Settings(database_url=empty_database.url, workflows_dir=tmp_path / "none")
    app = App(settings, clock)  # migrates to head, as `gengbao serve` does
    try:
        yield app
    finally:
        app.close()


def test_every_revision_has_a_golden_file() -> None:
    assert REVISIONS[-1] in schema_heads()
    assert [r for r in REVISIONS if not golden_file(r).exists()] == []


def test_the_case_shows_and_its_history_verifies(upgraded: App) -> None:
    case = upgraded.cases.get_case(CASE_ID)
    assert (case.state, case.revision, case.version, case.unit) == ("stop_failed", 2, 1, UNIT)
    assert case.data == {**CASE_DATA, **LIFECYCLE[0][2]}
    assert [e.trigger for e in upgraded.cases.history(CASE_ID)] == ["create", "stop_fail"]
    report = upgraded.cases.verify(CASE_ID)
    assert (report.ok, report.rows) == (True, 2), report


def test_the_case_takes_its_next_event(upgraded: App, revision: str) -> None:
    (before,) = rows(upgraded, cases, id=CASE_ID)
    # Cases from before 0003 have no head_hash: the event links to the newest
    # history row instead (CaseService._head), and records the head from then on.
    assert (before.head_hash is None) == (revision < "0003")
    trigger, actor, payload, reached = REPORT
    after = upgraded.cases.submit_event(CASE_ID, trigger, actor, payload)
    assert (after.state, after.revision) == (reached, 3)
    report = upgraded.cases.verify(CASE_ID)
    assert (report.ok, report.rows) == (True, 3), report
    (case_row,) = rows(upgraded, cases, id=CASE_ID)
    newest = rows(upgraded, history, "seq", case_id=CASE_ID)[-1]
    assert case_row.head_hash == newest.hash
    schemes = [r.hash_scheme for r in rows(upgraded, history, "seq", case_id=CASE_ID)]
    old = 1 if revision < "0008" else 2  # rows from before 0008 keep verifying with scheme 1
    assert schemes == [old, old, 2]
    if revision >= "0002":  # the state's deadline row, written at that revision, is cancelled
        golden_timer = rows(upgraded, timers, id=1)
        assert [(t.state, t.status) for t in golden_timer] == [("stop_failed", "cancelled")]
    pending = rows(upgraded, timers, case_id=CASE_ID, status="pending")
    assert pending and {t.state for t in pending} == {reached}


def test_a_new_case_the_same_day_gets_a_new_id(upgraded: App) -> None:
    """0013 seeds the day's counter from the ids there (0011 left it empty)."""
    created = upgraded.cases.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA)
    assert created.id == "C20260918-0002"


def test_the_upgraded_schema_is_the_head_schema(upgraded: App) -> None:
    with upgraded.engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert (version,) == schema_heads()
