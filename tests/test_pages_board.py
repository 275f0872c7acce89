"""The overdue board (超期预警), on both backends with the fake clock: counts per unit of
the viewer's scope and below, drilling down to the cases, and nothing outside it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from engine.api.app import create_api
from engine.app import App
from engine.clock import FixedClock
from tests.support.farmland import REPORTER, open_case
from tests.support.pages import OTHER_MEMBER, OTHER_UNIT, PASSWORD, TOWN, signed_in
from tests.support.serving import serving

ROW = re.compile(
    r'<tr data-unit="([\w-]+)"[^>]*>\s*<td>.*?</td>\s*<td><a[^>]*>(\d+)</a></td>\s*'
    r'<td>(\d+)</td>\s*<td class="overdue-count">(?:<a[^>]*>)?(\d+)',
    re.S,
)


@pytest.fixture
def site(app: App) -> Iterator[str]:
    for person in (TOWN, REPORTER):
        app.credentials.set_password(person, PASSWORD)
    with serving(create_api(app)) as base:
        yield base


def counts(page: httpx.Response) -> dict[str, tuple[int, int, int]]:
    assert page.status_code == 200, page.text
    return {m[0]: (int(m[1]), int(m[2]), int(m[3])) for m in ROW.findall(page.text)}


def test_the_board_counts_open_due_soon_and_overdue_per_unit(
    app: App, site: str, clock: FixedClock
) -> None:
    late = open_case(app)  # 新华村一组, 2 h to stop it
    clock.advance(timedelta(hours=3))
    soon = open_case(app)
    theirs = app.cases.create_case(
        "farmland_violation",
        OTHER_UNIT,
        OTHER_MEMBER,
        {"address": "胜利村一组", "land_type": "一般耕地", "source": "村级巡查"},
    ).id
    clock.advance(timedelta(minutes=90))  # soon and theirs: 30 min left, inside the 1 h reminder
    with signed_in(site, TOWN) as town:
        top = counts(town.get("/ui/board"))
        assert top == {"ddk": (3, 2, 1)}  # the town leader is also a member of the district grid
        villages = counts(town.get("/ui/board?unit=ddk-bq"))
        assert villages["ddk-bq-xh"] == (2, 1, 1)
        assert villages["ddk-bq-sl"] == (1, 1, 0)
        assert villages["ddk-bq-fs"] == (0, 0, 0)
        overdue = town.get("/ui/board/cases?unit=ddk-bq-xh&only=overdue").text
        assert late in overdue and soon not in overdue and theirs not in overdue
        everything = town.get("/ui/board/cases?unit=ddk-bq").text
        assert all(case in everything for case in (late, soon, theirs))
    with signed_in(site, REPORTER) as member:
        assert counts(member.get("/ui/board")) == {"ddk-bq-xh-1": (2, 1, 1)}
        for outside in ("/ui/board?unit=ddk-bq-sl", "/ui/board/cases?unit=ddk-bq-sl-1"):
            refused = member.get(outside)
            assert refused.status_code == 404 and theirs not in refused.text


PATROL_WORKFLOW = """
workflow: quick_check
title: 巡查复核
initial: waiting
roles: [group.member, town.leader]
fields:
  address: {type: string}
states:
  waiting:
    title: 待复核
    deadline: {within: 2h}
  checked:
    title: 已复核
    deadline: {within: 1d}
  done: {final: true}
transitions:
  - {trigger: check, from: waiting, to: checked, roles: [group.member]}
  - {trigger: close, from: checked, to: done, roles: [town.leader]}
"""


def test_the_board_filters_by_workflow_and_state_and_its_links_keep_them(
    app: App, site: str, clock: FixedClock
) -> None:
    app.catalog.register_text(PATROL_WORKFLOW, "quick_check.yaml")
    farmland = open_case(app)  # discovered
    waiting = app.cases.create_case("quick_check", "ddk-bq-xh-1", REPORTER, {"address": "一组"}).id
    checked = app.cases.create_case("quick_check", "ddk-bq-xh-1", REPORTER, {"address": "二号"}).id
    app.cases.submit_event(checked, "check", REPORTER, {})  # 1 d: inside the 24 h window
    clock.advance(timedelta(hours=3))  # the farmland case and `waiting` are overdue
    with signed_in(site, TOWN) as town:
        page = town.get("/ui/board?unit=ddk-bq")
        assert '<option value="quick_check">巡查复核</option>' in page.text
        assert counts(page)["ddk-bq-xh"] == (3, 1, 2)
        only = town.get("/ui/board?unit=ddk-bq&workflow=quick_check")
        assert counts(only)["ddk-bq-xh"] == (2, 1, 1)
        assert '<option value="waiting">待复核</option>' in only.text
        assert "discovered" not in only.text  # the states offered are the workflow's
        assert 'href="/ui/board?workflow=quick_check&amp;unit=ddk-bq-xh"' in only.text
        assert 'href="/ui/board/cases?workflow=quick_check&amp;unit=ddk-bq-xh"' in only.text
        state = town.get("/ui/board?unit=ddk-bq&workflow=quick_check&state=checked")
        assert counts(state)["ddk-bq-xh"] == (1, 1, 0)
        listed = town.get("/ui/board/cases?workflow=quick_check&unit=ddk-bq-xh").text
        assert waiting in listed and checked in listed and farmland not in listed
        one = town.get("/ui/board/cases?workflow=quick_check&state=waiting&unit=ddk-bq-xh").text
        assert waiting in one and checked not in one
        for bad, named in (
            ("workflow=nope", "没有这个流程：nope"),
            ("state=gone", "没有这个状态：gone"),
        ):
            for path in ("/ui/board", "/ui/board/cases"):
                refused = town.get(f"{path}?unit=ddk-bq&{bad}")
                assert refused.status_code == 422 and named in refused.text
