"""One visibility rule (engine.grid.visibility), applied in SQL by every service that reads.

A case, a patrol or a delivery of another town reads as missing; a list pages
in the query, so its first page is full even when other units hold more rows
than the limit, and the cursor walks exactly the viewer's rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from engine.app import App
from engine.cases.service import CaseFilter
from engine.clock import FixedClock
from engine.errors import NotPermitted, UnknownCase, UnknownUnit
from engine.grid.registry import load_grid
from engine.grid.visibility import ADMIN, Viewer, visible
from engine.store.tables import people, units
from tests.support.databases import Database
from tests.support.farmland import CASE_DATA, REPORTER, UNIT, farmland_app, local
from tests.support.patrolling import Recorder

OTHER_UNIT = "ddk-js-bh-1"  # 建胜镇 / 百花村 / 百花村一社
OTHER = "p-js-bh-1-member"  # its member: another town than REPORTER's 八桥镇
TOWN_LEADER = "p-bq-leader"  # 八桥镇: sees REPORTER's group
WORKFLOW = "farmland_violation"
START = local(2026, 9, 14, 8, 0)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def app(database: Database, clock: FixedClock) -> Iterator[App]:
    application = farmland_app(database.url, clock)
    try:
        yield application
    finally:
        application.close()


def test_a_case_of_another_town_is_missing_from_every_read_and_act(app: App) -> None:
    case_id = app.cases.create_case(WORKFLOW, UNIT, REPORTER, CASE_DATA).id
    for viewer in (OTHER, Viewer(OTHER), "nobody-at-all"):
        with pytest.raises(UnknownCase):
            app.cases.get_case(case_id, viewer=viewer)
        with pytest.raises(UnknownCase):
            app.cases.history(case_id, viewer=viewer)
        with pytest.raises(UnknownCase):
            app.cases.verify(case_id, viewer=viewer)
        with pytest.raises(UnknownCase):
            app.timers.describe(case_id, viewer=viewer)
        assert app.cases.list_cases(CaseFilter(limit=1000), viewer=viewer) == []
    with pytest.raises(UnknownCase):  # before any permission check: nothing is said about it
        app.cases.submit_event(case_id, "stop", OTHER, {"stop_note": "x"}, viewer=OTHER)
    assert app.cases.get_case(case_id).revision == 1  # nothing was done
    for viewer in (REPORTER, TOWN_LEADER, ADMIN):
        assert app.cases.get_case(case_id, viewer=viewer).id == case_id
        assert [e.trigger for e in app.cases.history(case_id, viewer=viewer)] == ["create"]
        assert app.cases.verify(case_id, viewer=viewer).ok
        assert [t["kind"] for t in app.timers.describe(case_id, viewer=viewer)["timers"]]
    moved = app.cases.submit_event(case_id, "stop", REPORTER, {"stop_note": "x"}, viewer=REPORTER)
    assert (moved.state, moved.revision) == ("stopped", 2)


def test_the_case_list_pages_in_sql_past_more_cases_of_other_units_than_the_limit(
    app: App,
) -> None:
    theirs = [app.cases.create_case(WORKFLOW, OTHER_UNIT, OTHER, CASE_DATA).id for _ in range(5)]
    mine = [app.cases.create_case(WORKFLOW, UNIT, REPORTER, CASE_DATA).id for _ in range(3)]
    assert max(theirs) < min(mine)  # a filter after LIMIT would return an empty first page
    first = app.cases.list_cases(CaseFilter(limit=2), viewer=REPORTER)
    rest = app.cases.list_cases(CaseFilter(limit=2, after=first[-1].id), viewer=REPORTER)
    assert [v.id for v in first + rest] == mine
    everything = app.cases.list_cases(CaseFilter(limit=1000))  # the administrator
    assert [v.id for v in everything] == theirs + mine


def test_the_patrol_list_pages_in_sql_past_more_patrols_of_other_units_than_the_limit(
    app: App, clock: FixedClock
) -> None:
    ledger = app.patrols.ledger
    clock.set(START + timedelta(hours=10))
    theirs = [
        ledger.record(OTHER_UNIT, OTHER, started=START + timedelta(minutes=i)).id for i in range(5)
    ]
    mine = [
        ledger.record(UNIT, REPORTER, started=START + timedelta(hours=1, minutes=i)).id
        for i in range(3)
    ]
    first = ledger.list(viewer=REPORTER, limit=2)
    rest = ledger.list(viewer=REPORTER, limit=2, after=first[-1].id)
    assert [p.id for p in first + rest] == mine
    assert [p.id for p in ledger.list(viewer=OTHER, limit=1000)] == theirs
    with pytest.raises(NotPermitted):  # the ledger's word for a patrol out of sight
        ledger.get(theirs[0], viewer=REPORTER)
    assert ledger.get(mine[0], viewer=TOWN_LEADER).id == mine[0]


def test_the_delivery_list_pages_in_sql_past_more_deliveries_of_other_units_than_the_limit(
    app: App,
) -> None:
    app.dispatcher.channels = {"memo": Recorder()}
    for _ in range(4):  # each stop_fail tells three people of 建胜镇
        other = app.cases.create_case(WORKFLOW, OTHER_UNIT, OTHER, CASE_DATA).id
        app.cases.submit_event(other, "stop_fail", OTHER, {"stop_note": "拒绝"})
    own = app.cases.create_case(WORKFLOW, UNIT, REPORTER, CASE_DATA).id
    app.cases.submit_event(own, "stop_fail", REPORTER, {"stop_note": "拒绝停工"})
    app.dispatcher.expand()
    everything = app.dispatcher.list(limit=1000)
    mine = [d["id"] for d in everything if d["case"] == own]
    assert len(mine) >= 3 and len(everything) - len(mine) > 2 * len(mine)
    assert min(mine) > min(d["id"] for d in everything)  # theirs come first
    first = app.dispatcher.list(limit=2, viewer=REPORTER)
    rest = app.dispatcher.list(limit=1000, viewer=REPORTER, after=first[-1]["id"])
    assert [d["id"] for d in first + rest] == mine
    assert app.dispatcher.list(case=own, viewer=TOWN_LEADER, limit=1000) != []
    with pytest.raises(UnknownCase):
        app.dispatcher.list(case=own, viewer=OTHER)


def test_the_grid_shows_a_viewer_its_own_chain(app: App) -> None:
    assert app.grid.unit("ddk", viewer=OTHER)["code"] == "ddk"  # an ancestor
    assert app.grid.unit(OTHER_UNIT, viewer=OTHER)["code"] == OTHER_UNIT
    with pytest.raises(UnknownUnit):
        app.grid.unit(UNIT, viewer=OTHER)  # another town
    assert app.grid.unit(UNIT, viewer=ADMIN)["code"] == UNIT
    assert {r["code"] for r in app.grid.roots(viewer=OTHER)} == {"ddk"}
    serving = {p["id"] for p in app.grid.people("ddk-js", viewer=OTHER)}
    assert OTHER in serving and REPORTER not in serving
    assert app.grid.people("ddk-bq", viewer=OTHER) == []


GRID_WITH_UNDERSCORES = """
units:
  - code: d
    name: 区
    level: district
    children:
      - {code: t_1, name: 甲镇, level: town}
      - {code: tx1, name: 乙镇, level: town}
      - {code: T_1, name: 丙镇, level: town}
people:
  - id: p-t1
    name: 甲
    roles: [{unit: t_1, role: member}]
"""


def test_the_scope_is_an_exact_prefix_not_a_like_pattern(app: App) -> None:
    """``_`` is a LIKE wildcard and SQLite's LIKE ignores case: neither widens a scope."""
    load_grid(app.engine, GRID_WITH_UNDERSCORES)
    with app.engine.connect() as conn:
        seen = set(
            conn.execute(
                sa.select(units.c.code).where(
                    units.c.path.startswith("/d/"), visible("p-t1", units.c.path)
                )
            ).scalars()
        )
    assert seen == {"t_1"}


def test_a_deactivated_person_sees_nothing(app: App) -> None:
    case_id = app.cases.create_case(WORKFLOW, UNIT, REPORTER, CASE_DATA).id
    with app.engine.begin() as conn:
        conn.execute(sa.update(people).where(people.c.id == REPORTER).values(active=False))
    with pytest.raises(UnknownCase):
        app.cases.get_case(case_id, viewer=REPORTER)
    assert app.cases.get_case(case_id, viewer=TOWN_LEADER).id == case_id
