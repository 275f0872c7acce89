"""The overdue board (engine/cases/board.py): counts per unit, scope, buckets, drill-down.

The story: at 10:00 on Friday 2026-09-18 cases are opened in three villages of two
towns — 新华村 and 丰收村 (八桥镇), 百花村 (建胜镇).  A ``discovered`` case is due at
12:00 with reminders 1 h and 30 min before: due soon from 11:00.  A ``reported``
case (24 h, no ``remind`` before its deadline) is due soon within ``board.due_soon``
(6 h here).  Only the clock is fake.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from engine.app import App
from engine.cases.board import BoardFilter
from engine.clock import FixedClock
from engine.errors import InvalidData, UnknownPerson, UnknownUnit
from tests.support.farmland import CASE_DATA, local

WORKFLOW = "farmland_violation"
XH_GROUP, XH_REPORTER = "ddk-bq-xh-1", "p-bq-xh-1-member"  # 八桥镇 / 新华村 / 一组
FS_GROUP, FS_REPORTER = "ddk-bq-fs-1", "p-bq-fs-1-member"  # 八桥镇 / 丰收村 / 一组
BH_GROUP, BH_REPORTER = "ddk-js-bh-1", "p-js-bh-1-member"  # 建胜镇 / 百花村 / 一社
XH_VIEWER = "p-bq-xh-member1"  # a role on 新华村 only
TOWN_VIEWER = "p-bq-office"  # 八桥镇's office
OTHER_TOWN = "p-js-office"  # 建胜镇's office


@pytest.fixture
def app_settings() -> dict[str, Any]:
    return {"board": {"due_soon": "6h"}}


def open_in(app: App, unit: str, reporter: str) -> str:
    return app.cases.create_case(WORKFLOW, unit, reporter, CASE_DATA).id


def counts(app: App, viewer: str, **f: Any) -> dict[str, tuple[int, int, int]]:
    view = app.board.board(BoardFilter(**f), viewer=viewer)
    return {u.unit: (u.open, u.due_soon, u.overdue) for u in view.units}


@pytest.fixture
def story(app: App) -> dict[str, str]:
    """Four open cases: two in 新华村 (one reported on), one in 丰收村, one in 百花村."""
    cases = {
        "xh": open_in(app, XH_GROUP, XH_REPORTER),
        "xh_reported": open_in(app, XH_GROUP, XH_REPORTER),
        "fs": open_in(app, FS_GROUP, FS_REPORTER),
        "bh": open_in(app, BH_GROUP, BH_REPORTER),
    }
    reported = cases["xh_reported"]
    app.cases.submit_event(reported, "stop_fail", XH_REPORTER, {"stop_note": "拒不停工"})
    app.cases.submit_event(reported, "report", "p-bq-xh-leader", {"report_note": "报告八桥镇"})
    return cases


def test_each_unit_counts_its_subtree_and_only_what_the_viewer_sees(
    app: App, story: dict[str, str]
) -> None:
    town = counts(app, TOWN_VIEWER)
    assert town["ddk-bq"] == (3, 0, 0)
    assert town["ddk-bq-xh"] == (2, 0, 0) and town[XH_GROUP] == (2, 0, 0)
    assert town["ddk-bq-fs"] == (1, 0, 0) and town["ddk-bq-sl"] == (0, 0, 0)
    assert "ddk" not in town and not any(u.startswith("ddk-js") for u in town)

    village = counts(app, XH_VIEWER)
    assert village["ddk-bq-xh"] == (2, 0, 0)
    assert set(village) == {"ddk-bq-xh", "ddk-bq-xh-1", "ddk-bq-xh-2", "ddk-bq-xh-3"}

    other = counts(app, OTHER_TOWN)
    assert other["ddk-js"] == (1, 0, 0) and other["ddk-js-bh"] == (1, 0, 0)
    assert not any(u.startswith("ddk-bq") for u in other)

    assert counts(app, "p-ddk-office1")["ddk"] == (4, 0, 0)  # the district sees all four


def test_the_board_rows_are_the_tree_from_the_viewers_top_units(
    app: App, story: dict[str, str]
) -> None:
    view = app.board.board(viewer=TOWN_VIEWER)
    top = view.units[0]
    assert (top.unit, top.depth, top.parent) == ("ddk-bq", 0, "ddk")
    depth = {u.unit: u.depth for u in view.units}
    assert depth["ddk-bq-xh"] == 1 and depth[XH_GROUP] == 2
    assert [u.unit for u in view.units] == sorted(u.unit for u in view.units)  # path order


def test_filters_by_workflow_state_and_unit(app: App, story: dict[str, str]) -> None:
    assert counts(app, TOWN_VIEWER, state="reported")["ddk-bq"] == (1, 0, 0)
    assert counts(app, TOWN_VIEWER, state="discovered")["ddk-bq"] == (2, 0, 0)
    assert counts(app, TOWN_VIEWER, workflow="no_such_workflow")["ddk-bq"] == (0, 0, 0)
    below = counts(app, TOWN_VIEWER, unit="ddk-bq-fs")
    assert set(below) == {"ddk-bq-fs", "ddk-bq-fs-1", "ddk-bq-fs-2"}
    assert below["ddk-bq-fs"] == (1, 0, 0)
    with pytest.raises(UnknownUnit):  # another town's unit does not exist for the viewer
        app.board.board(BoardFilter(unit="ddk-js"), viewer=TOWN_VIEWER)
    with pytest.raises(UnknownUnit):
        app.board.cases("ddk-js-bh", "open", viewer=TOWN_VIEWER)
    with pytest.raises(UnknownPerson):
        app.board.board(viewer="p-nobody")


def test_due_soon_starts_at_the_first_reminder_and_overdue_after_the_deadline(
    app: App, clock: FixedClock, story: dict[str, str]
) -> None:
    """discovered: due 12:00, remind [1h, 30m] → due soon from 11:00 through 12:00."""
    clock.set(local(2026, 9, 18, 10, 59, 59))
    assert counts(app, XH_VIEWER, state="discovered")["ddk-bq-xh"] == (1, 0, 0)
    clock.set(local(2026, 9, 18, 11, 0))
    assert counts(app, XH_VIEWER, state="discovered")["ddk-bq-xh"] == (1, 1, 0)
    clock.set(local(2026, 9, 18, 12, 0))
    assert counts(app, XH_VIEWER, state="discovered")["ddk-bq-xh"] == (1, 1, 0)
    clock.advance(timedelta(microseconds=1))
    assert counts(app, XH_VIEWER, state="discovered")["ddk-bq-xh"] == (1, 0, 1)
    assert counts(app, TOWN_VIEWER)["ddk-bq"] == (3, 0, 2)  # 新华村's and 丰收村's


def test_a_state_without_reminders_uses_the_board_default(
    app: App, clock: FixedClock, story: dict[str, str]
) -> None:
    """reported at 10:00, due in 24 h, no reminder before it: due soon 6 h before."""
    clock.set(local(2026, 9, 19, 3, 59, 59))
    assert counts(app, XH_VIEWER, state="reported")["ddk-bq-xh"] == (1, 0, 0)
    clock.set(local(2026, 9, 19, 4, 0))
    assert counts(app, XH_VIEWER, state="reported")["ddk-bq-xh"] == (1, 1, 0)
    assert app.board.board(viewer=XH_VIEWER).due_soon_default_seconds == 6 * 3600


def test_the_drill_down_lists_the_cases_of_a_cell(
    app: App, clock: FixedClock, story: dict[str, str]
) -> None:
    clock.set(local(2026, 9, 18, 11, 30))
    soon = app.board.cases("ddk-bq", "due_soon", viewer=TOWN_VIEWER)
    assert [c.id for c in soon.items] == sorted([story["xh"], story["fs"]])
    assert all(c.bucket == "due_soon" and c.seconds_left == 1800 for c in soon.items)
    assert soon.items[0].deadline_local == "2026-09-18 12:00"
    everything = app.board.cases("ddk-bq", "open", viewer=TOWN_VIEWER)
    assert {c.id for c in everything.items} == {story["xh"], story["fs"], story["xh_reported"]}
    assert everything.items[-1].id == story["xh_reported"]  # the latest deadline last
    assert app.board.cases("ddk-bq", "overdue", viewer=TOWN_VIEWER).items == []
    with pytest.raises(InvalidData):
        app.board.cases("ddk-bq", "late", viewer=TOWN_VIEWER)


def test_the_drill_down_pages_in_deadline_order(app: App, clock: FixedClock) -> None:
    opened = []
    for _ in range(5):
        opened.append(open_in(app, XH_GROUP, XH_REPORTER))
        clock.advance(timedelta(minutes=1))
    clock.set(local(2026, 9, 18, 13, 0))  # all five overdue, the first one most
    seen: list[str] = []
    after: str | None = None
    sizes = []
    while True:
        page = app.board.cases("ddk-bq-xh", "overdue", viewer=XH_VIEWER, limit=2, after=after)
        sizes.append(len(page.items))
        seen += [c.id for c in page.items]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert sizes == [2, 2, 1]
    assert seen == opened  # deadline order, each once
    with pytest.raises(InvalidData):
        app.board.cases("ddk-bq-xh", "overdue", viewer=XH_VIEWER, after="C-nope")
