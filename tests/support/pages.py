"""What the page tests and ``make screenshots`` do on a running server: people with
passwords, a case waiting for its village, signing in through the form."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx

from tests.support.api_server import ApiServer
from tests.support.farmland import CASE_DATA, UNIT

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from tests.support.receivers import ReceivedRequest

__all__ = [
    "CSRF",
    "LEADER",
    "OTHER_MEMBER",
    "OTHER_UNIT",
    "PASSWORD",
    "TOWN",
    "link_in",
    "open_case",
    "set_passwords",
    "sign_in",
    "signed_in",
]

PASSWORD = "gengbao-duty-2026"
LEADER = "p-bq-xh-leader"  # 新华村 网格长: reports a case the group could not stop
TOWN = "p-bq-leader"  # 八桥镇 网格长: verifies it next
OTHER_UNIT = "ddk-bq-sl-1"  # 胜利村一组: another village of the same town
OTHER_MEMBER = "p-bq-sl-1-member"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LINK = re.compile(r"查看和办理：(http[^\s\"\\]+)")


def set_passwords(server: ApiServer, *people: str) -> None:
    """``gengbao person set-password`` for each, the password on standard input."""
    for person in people:
        server.cli("person", "set-password", person, input=PASSWORD + "\n")


def open_case(
    server: ApiServer, token: str, *, unit: str = UNIT, stop_fail: bool = True, **data: Any
) -> str:
    """A farmland case opened over the API (as *token*'s actor), by default stopped
    without success so that it waits for the village to report it; its id."""
    with server.client(token) as client:
        answer = client.post(
            "/cases",
            json={"workflow": "farmland_violation", "unit": unit, "data": {**CASE_DATA, **data}},
        )
        assert answer.status_code == 201, answer.text
        case: str = answer.json()["id"]
        if stop_fail:
            event = {"trigger": "stop_fail", "payload": {"stop_note": "当事人拒绝停工"}}
            moved = client.post(f"/cases/{case}/events", json=event)
            assert moved.status_code == 200, moved.text
    return case


def link_in(message: ReceivedRequest) -> str | None:
    """The "查看和办理：LINK" of a webhook message, if it has one."""
    found = LINK.search(json.dumps(message.json(), ensure_ascii=False))
    return found.group(1) if found else None


def sign_in(page: Page, person: str, password: str = PASSWORD) -> None:
    """Fill in and send the sign-in form the page shows (``/ui/login``)."""
    page.fill("#login", person)
    page.fill("#password", password)
    page.click("button[type=submit]")


@contextmanager
def signed_in(base: str, person: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    """An HTTP client of the pages at *base*, signed in as *person* through the form."""
    with httpx.Client(base_url=base, timeout=30) as client:
        token = CSRF.search(client.get("/ui/login").text)
        assert token is not None
        data = {"csrf": token.group(1), "login": person, "password": password}
        assert client.post("/ui/login", data=data).status_code == 303
        yield client
