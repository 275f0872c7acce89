"""The patrol page (巡查) in a real browser (Playwright driving Chromium), at 360 px.

One server (SQLite) and one browser for the module, as in ``test_pages_browser.py``:
a 网格员 signs in, opens 巡查 from the bar, fills in the form, attaches a photo as a
phone's camera would hand it over, and sends it; the patrol is at the top of the
ledger with its photo shown, and no page scrolls sideways.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, FilePayload, Page

from tests.support.api_server import ApiServer, running_server
from tests.support.browser import PHONE, chromium
from tests.support.farmland import REPORTER
from tests.support.images import png
from tests.support.pages import set_passwords, sign_in

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
        yield server


@pytest.fixture
def phone(browser: Browser, site: ApiServer) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, locale="zh-CN", base_url=site.base_url)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_a_patrol_recorded_on_a_phone_is_in_the_ledger(phone: Page) -> None:
    phone.goto("/ui/login")
    sign_in(phone, REPORTER)
    phone.locator("header nav a", has_text="巡查").click()
    assert phone.url.endswith("/ui/patrols")
    assert phone.evaluate(WIDTH) <= 360
    assert phone.locator("#patrol-unit").input_value() == "ddk-bq-xh-1"
    assert phone.locator("#patrol-started").input_value() != ""  # now, by default

    phone.fill("#patrol-route", "一组王家湾—二组水库—三组")
    phone.fill("#patrol-findings", "二组水库边有新开挖痕迹，约 200 平方米" * 3)
    photo: FilePayload = {
        "name": "IMG_0001.png",
        "mimeType": "image/png",
        "buffer": png((40, 120, 200)),
    }
    phone.set_input_files("#patrol-photos", [photo])
    phone.click("#patrol-form button[type=submit]")

    assert "/ui/patrols?recorded=P" in phone.url
    assert "巡查已记录" in phone.locator("#recorded").inner_text()
    entry = phone.locator("li.patrol").first
    text = entry.inner_text()
    assert "巡查路线：一组王家湾—二组水库—三组" in text
    assert "二组水库边有新开挖痕迹" in text and "照片 1 张" in text
    thumb = entry.locator(".thumbs img")
    assert thumb.count() == 1
    thumb.scroll_into_view_if_needed()
    assert thumb.evaluate("img => img.decode().then(() => img.naturalWidth)") == 8
    assert phone.evaluate(WIDTH) <= 360
