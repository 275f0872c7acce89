"""The assessment dashboard (考核) in a real browser at the width of a small phone.

One server (SQLite, the demo grid, the real clock) and one browser for the module,
as in ``test_pages_browser``: a case and a patrol made over the API, then the group's
网格员 signs in, opens 考核 from the navigation, changes the period, and sees the
table and the charts, with no horizontal scroll of the page (the wide table scrolls
inside its own box).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.support.api_server import ApiServer, running_server
from tests.support.browser import PHONE, chromium
from tests.support.farmland import REPORTER, UNIT
from tests.support.pages import OTHER_UNIT, open_case, set_passwords, sign_in

WIDTH = "document.documentElement.scrollWidth"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def site(
    browser: Browser, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    with running_server("sqlite", request, tmp_path_factory) as server:
        set_passwords(server, REPORTER)
        token = server.token(REPORTER)
        open_case(server, token)
        with server.client(token) as client:
            made = client.post("/patrols", json={"unit": UNIT, "findings": "未发现问题"})
            assert made.status_code == 201, made.text
        yield server


@pytest.fixture
def phone(browser: Browser, site: ApiServer) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, locale="zh-CN", base_url=site.base_url)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_the_assessment_on_a_phone(phone: Page) -> None:
    phone.goto("/ui/login")
    sign_in(phone, REPORTER)
    phone.locator("header nav a", has_text="考核").click()
    assert phone.url.endswith("/ui/assessment")
    assert phone.locator("h1").inner_text() == "考核"
    group = phone.locator("tr[data-unit=ddk-bq-xh-1]")
    assert group.count() == 1
    assert phone.locator(f"tr[data-unit={OTHER_UNIT}]").count() == 0  # not theirs
    assert int(group.locator("[data-k=patrols_done]").inner_text()) >= 1
    assert phone.evaluate(WIDTH) <= PHONE["width"]

    quarter = phone.locator("#period optgroup[label=按季度] option").first
    value = quarter.get_attribute("value")
    assert value is not None and "-Q" in value
    phone.select_option("#period", value)
    phone.locator("form.period-form button[type=submit]").click()
    assert phone.url.endswith(f"/ui/assessment?period={value}")
    assert phone.locator("#period").input_value() == value
    assert phone.locator("tr[data-unit=ddk-bq-xh-1]").count() == 1
    assert int(phone.locator("tr[data-unit=ddk-bq-xh-1] [data-k=cases]").inner_text()) >= 1

    chart = phone.locator("figure[data-chart=scores] img")
    chart.scroll_into_view_if_needed()
    assert chart.evaluate("img => img.complete && img.naturalWidth > 0")
    frame = phone.locator("figure[data-chart=scores]").bounding_box()
    assert frame is not None and frame["x"] + frame["width"] <= PHONE["width"]
    assert phone.evaluate(WIDTH) <= PHONE["width"]
    scroller = phone.locator(".scroll").first  # the table scrolls in its own box
    assert scroller.evaluate("el => el.scrollWidth > el.clientWidth")
