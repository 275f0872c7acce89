"""签收 and the colours of my tasks, on both backends, with the fake clock.

The App (with the farmland workflow asking ``discovered`` for an acknowledgement
within 30 minutes) is served on a real loopback port (:func:`tests.support.serving`)
and driven with httpx as a browser drives it; the clock is moved to see a task turn
from green to yellow (inside the reminder window) to red (overdue).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from engine.api.app import create_api
from engine.app import App
from engine.clock import FixedClock
from tests.support.acks import ACK_WORKFLOW
from tests.support.farmland import REPORTER, open_case
from tests.support.pages import PASSWORD
from tests.support.serving import serving

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def app(app: App) -> App:
    app.catalog.register_text(ACK_WORKFLOW, "farmland_violation.yaml")
    app.credentials.set_password(REPORTER, PASSWORD)
    return app


@pytest.fixture
def member(app: App) -> Iterator[httpx.Client]:
    """REPORTER (新华村一组 网格员), signed in to the pages."""
    with serving(create_api(app)) as base, httpx.Client(base_url=base, timeout=30) as client:
        form = client.get("/ui/login")
        token = CSRF.search(form.text)
        assert token is not None
        data = {"csrf": token.group(1), "login": REPORTER, "password": PASSWORD}
        assert client.post("/ui/login", data=data).status_code == 303
        yield client


def _task(page: str, case: str) -> str:
    found = re.search(rf'<li class="task (\w+)" data-case="{case}">(.*?)</li>', page, re.S)
    assert found is not None, page
    return f"{found.group(1)} {found.group(2)}"


def test_ack_from_the_case_page(app: App, member: httpx.Client) -> None:
    case = open_case(app)
    assert "未签收" in _task(member.get("/ui/tasks").text, case)
    page = member.get(f"/ui/cases/{case}").text
    assert f'action="/ui/cases/{case}/ack"' in page
    token = CSRF.search(page)
    assert token is not None
    done = member.post(f"/ui/cases/{case}/ack", data={"csrf": token.group(1)})
    assert done.status_code == 303
    page = member.get(done.headers["location"]).text
    assert "<dt>承办人</dt><dd>毛海涛</dd>" in page
    assert f'action="/ui/cases/{case}/ack"' not in page
    assert "签收" in page  # the history says who acknowledged
    assert "未签收" not in _task(member.get("/ui/tasks").text, case)


def test_a_task_turns_yellow_in_its_reminder_window_and_red_when_overdue(
    app: App, member: httpx.Client, clock: FixedClock
) -> None:
    case = open_case(app)
    member.get("/ui/tasks")
    token = CSRF.search(member.get(f"/ui/cases/{case}").text)
    assert token is not None
    assert member.post(f"/ui/cases/{case}/ack", data={"csrf": token.group(1)}).status_code == 303
    # acknowledged: the state's own deadline counts, 2 h with reminders from 1 h before
    assert _task(member.get("/ui/tasks").text, case).startswith("ok ")
    clock.advance(timedelta(minutes=61))
    assert _task(member.get("/ui/tasks").text, case).startswith("soon ")
    clock.advance(timedelta(minutes=60))
    late = _task(member.get("/ui/tasks").text, case)
    assert late.startswith("overdue ") and "超期 1分钟" in late
