"""The deployed event path's SQL: few statements, the actor's roles cached by grid stamp.

Counted with a SQLAlchemy ``before_cursor_execute`` listener on the App's own
engine (the timers and outbox effects that ``gengbao serve`` runs included),
so a change that adds a query to every event fails here, on both backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from engine.app import App
from engine.clock import FixedClock
from engine.errors import NotPermitted
from engine.grid.registry import load_grid
from engine.store.tables import grid_stamp, overdue_facts, person_roles, timers
from tests.support.databases import Database
from tests.support.farmland import (
    CASE_DATA,
    GRID_FILE,
    LIFECYCLE,
    REPORTER,
    UNIT,
    farmland_app,
)

WORKFLOW = "farmland_violation"
MAX_STATEMENTS_PER_EVENT = 7


def stop(app: App, case_id: str) -> str:
    return app.cases.submit_event(case_id, "stop", REPORTER, {"stop_note": "已劝阻"}).state


@contextmanager
def counting(engine: sa.Engine) -> Iterator[list[str]]:
    """The SQL statements run on *engine* inside the block (BEGIN/COMMIT aside)."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.split(None, 1)[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)


def walk(app: App, clock: FixedClock) -> list[list[str]]:
    """One case through the whole lifecycle; the statements of each event."""
    case_id = app.cases.create_case(WORKFLOW, UNIT, REPORTER, CASE_DATA).id
    per_event = []
    for trigger, actor, payload, reached in LIFECYCLE:
        clock.advance(timedelta(minutes=5))
        with counting(app.engine) as seen:
            assert app.cases.submit_event(case_id, trigger, actor, payload).state == reached
        per_event.append(seen)
    return per_event


def test_a_deployed_event_issues_at_most_seven_statements_once_roles_are_cached(
    app: App, clock: FixedClock
) -> None:
    walk(app, clock)  # the first case fills the roles cache, one query per actor
    misses = app.cases.held.misses
    per_event = walk(app, clock)
    assert app.cases.held.misses == misses  # no roles query on the second case
    counts = [len(s) for s in per_event]
    worst = per_event[counts.index(max(counts))]
    assert max(counts) <= MAX_STATEMENTS_PER_EVENT, "\n".join(worst)
    # the case row is written once per event (its deadline with it)
    for statements in per_event:
        updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE CASES")]
        assert len(updates) == 1, statements


def test_a_role_revoked_by_another_process_is_refused_on_the_next_event(
    app: App, database: Database
) -> None:
    first = app.cases.create_case(WORKFLOW, UNIT, REPORTER, CASE_DATA).id
    second = app.cases.create_case(WORKFLOW, UNIT, REPORTER, CASE_DATA).id
    misses = app.cases.held.misses
    other = database.new_engine()  # another process's connection: an operator's own SQL
    with other.begin() as conn:
        conn.execute(
            sa.update(person_roles).where(person_roles.c.person_id == REPORTER).values(active=False)
        )
    with pytest.raises(NotPermitted):
        stop(app, first)
    assert app.cases.held.misses == misses + 1  # the stamp moved: the cache was refilled
    with other.begin() as conn:
        conn.execute(
            sa.update(person_roles).where(person_roles.c.person_id == REPORTER).values(active=True)
        )
    assert stop(app, second) == "stopped"


def grid_text() -> str:
    """The demo grid as text, its boundaries file named by absolute path (text has no folder)."""
    text = GRID_FILE.read_text(encoding="utf-8")
    name = "dadukou-boundaries.geojson"
    return text.replace(f"boundaries: {name}", f"boundaries: {GRID_FILE.parent / name}")


def test_every_grid_load_moves_the_stamp(app: App, database: Database) -> None:
    engine = database.new_engine()

    def stamp() -> int:
        with engine.connect() as conn:
            value: int = conn.execute(sa.select(grid_stamp.c.version)).scalar_one()
            return value

    before = stamp()
    load_grid(engine, GRID_FILE)  # the same grid again: rows are compared, nothing changes
    unchanged = stamp()
    text = grid_text()
    assert "name: 新华村一组," in text
    load_grid(engine, text.replace("name: 新华村一组,", "name: 新华村第一组,"))  # a unit renamed
    assert stamp() > unchanged >= before


def test_a_second_service_on_the_same_database_sees_a_grid_load_by_the_first(
    app: App, database: Database, clock: FixedClock
) -> None:
    other = farmland_app(database.url, clock)
    try:
        case_id = other.cases.create_case(WORKFLOW, UNIT, REPORTER, CASE_DATA).id  # warm
        removed = grid_text()
        app.cases.create_case(WORKFLOW, UNIT, REPORTER, CASE_DATA)
        with app.engine.begin() as conn:
            conn.execute(sa.update(person_roles).values(active=False))
        with pytest.raises(NotPermitted):
            stop(other, case_id)
        load_grid(app.engine, removed)  # the grid file restores every role
        assert stop(other, case_id) == "stopped"
    finally:
        other.close()


def test_leaving_a_state_past_its_deadline_records_the_missed_deadline_once(
    app: App, clock: FixedClock
) -> None:
    """No sweep ran: the deadline and the rungs already due are fired "on-leave" with
    their overdue facts; the reminders and rungs not yet due are cancelled."""
    case_id = app.cases.create_case(WORKFLOW, UNIT, REPORTER, CASE_DATA).id
    with app.engine.connect() as conn:
        waiting = conn.execute(sa.select(timers).where(timers.c.case_id == case_id)).all()
    deadline = next(t for t in waiting if t.kind == "deadline")
    clock.advance(deadline.due_at - clock.now() + timedelta(minutes=1))
    now = clock.now()
    due = {t.id for t in waiting if t.kind in ("deadline", "escalation") and t.due_at <= now}
    trigger, actor, payload, _ = LIFECYCLE[0]
    app.cases.submit_event(case_id, trigger, actor, payload)
    with app.engine.connect() as conn:
        after = {
            t.id: t
            for t in conn.execute(sa.select(timers).where(timers.c.id.in_([t.id for t in waiting])))
        }
        facts = conn.execute(sa.select(overdue_facts).where(overdue_facts.c.case_id == case_id))
        facts_by_timer = {f.timer_id: f for f in facts}
    assert set(facts_by_timer) == due and deadline.id in due
    assert facts_by_timer[deadline.id].deadline_at == deadline.deadline_at
    assert facts_by_timer[deadline.id].rung is None
    for timer_id, t in after.items():
        if timer_id in due:
            assert (t.status, t.fired_by, t.fired_at) == ("fired", "on-leave", now)
        else:
            assert t.status == "cancelled"
