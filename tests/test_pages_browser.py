"""The pages for duty staff in a real browser (Playwright driving Chromium).

One server (SQLite) and one browser for the module; each test opens its own browser
context (its own cookies), at the width of a small phone.  The walk: a password set
with the CLI, the message a duty officer receives, its link opened before signing in
(the sign-in comes back to it), my tasks, a form refused and then accepted, and the
next holder seeing the case in their tasks.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Dialog, Locator, Page

from tests.support.api_server import ApiServer, running_server
from tests.support.browser import PHONE, chromium
from tests.support.farmland import REPORTER
from tests.support.pages import (
    LEADER,
    OTHER_MEMBER,
    OTHER_UNIT,
    TOWN,
    link_in,
    open_case,
    set_passwords,
    sign_in,
)
from tests.support.receivers import HttpReceiver


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def inbox() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def site(
    browser: Browser,
    inbox: HttpReceiver,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiServer]:
    channels = {"webhook": {"url": inbox.url("/hook")}}
    with running_server("sqlite", request, tmp_path_factory, channels=channels) as server:
        set_passwords(server, LEADER, TOWN, REPORTER)
        yield server


@pytest.fixture(scope="module")
def tokens(site: ApiServer) -> dict[str, str]:
    return site.tokens([REPORTER, OTHER_MEMBER])


@pytest.fixture
def phone(browser: Browser, site: ApiServer) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, locale="zh-CN", base_url=site.base_url)
    try:
        yield context.new_page()
    finally:
        context.close()


def _as(browser: Browser, site: ApiServer, person: str) -> Page:
    context = browser.new_context(viewport=PHONE, locale="zh-CN", base_url=site.base_url)
    page = context.new_page()
    page.goto("/ui/login")
    sign_in(page, person)
    return page


def _form(page: Page, trigger: str) -> Locator:
    """The case page's form for *trigger*, its folded section opened."""
    form = page.locator(f"form[data-trigger={trigger}]")
    section = page.locator("details.action", has=form)
    if section.get_attribute("open") is None:
        section.locator("summary").click()
    return form


def test_from_the_message_link_to_the_next_holders_tasks(
    site: ApiServer, inbox: HttpReceiver, tokens: dict[str, str], phone: Page, browser: Browser
) -> None:
    case = open_case(site, tokens[REPORTER], party="王某")
    message = inbox.wait_for(lambda r: case in r.text and link_in(r) is not None)
    link = link_in(message)
    assert link == f"{site.base_url}/ui/cases/{case}"

    phone.goto(link)  # not signed in yet: the sign-in page, which comes back here
    assert "/ui/login?next=" in phone.url
    sign_in(phone, LEADER)
    assert phone.url == link
    assert phone.locator("#state").inner_text() == "制止无效待报告"

    phone.goto("/ui/tasks")
    task = phone.locator(f"li.task[data-case='{case}']")
    assert task.count() == 1
    assert "ok" in (task.get_attribute("class") or "")  # 2 h left, reminders from 1 h
    assert "制止无效待报告" in task.inner_text()
    task.locator("a.case-link").click()
    assert phone.url == link

    form = phone.locator("form[data-trigger=report]")
    form.locator("textarea[name=f_photos]").fill("现场照片-001")
    form.locator("button[type=submit]").click()  # no 报告说明: refused by the case service
    refused = phone.locator("form[data-trigger=report]")
    assert refused.locator(".field-error").inner_text() == "报告说明：此项必填"
    assert refused.locator("textarea[name=f_photos]").input_value() == "现场照片-001"
    assert phone.locator("#state").inner_text() == "制止无效待报告"

    refused.locator("textarea[name=f_report_note]").fill("制止无效，报告八桥镇")
    refused.locator("button[type=submit]").click()
    assert phone.locator("#state").inner_text() == "待镇街核实"
    assert "报告镇街" in phone.locator(".timeline li").first.inner_text()
    assert phone.locator("form[data-trigger=report]").count() == 0  # not theirs any more

    town = _as(browser, site, TOWN)
    assert town.url.endswith("/ui/tasks")
    mine = town.locator(f"li.task[data-case='{case}']")
    assert "待镇街核实" in mine.inner_text()
    mine.locator("a.case-link").click()
    assert town.locator("form[data-trigger=confirm]").count() == 1
    town.context.close()


def test_a_refused_form_keeps_what_was_typed_and_names_the_field(
    site: ApiServer, tokens: dict[str, str], browser: Browser
) -> None:
    case = open_case(site, tokens[REPORTER])
    leader = _as(browser, site, LEADER)
    leader.goto(f"/ui/cases/{case}")
    form = leader.locator("form[data-trigger=report]")
    form.locator("textarea[name=f_report_note]").fill("已报告")
    form.locator("button[type=submit]").click()
    town = _as(browser, site, TOWN)
    town.goto(f"/ui/cases/{case}")
    form = _form(town, "confirm")
    form.locator("textarea[name=f_verify_note]").fill("现场核实：违法建房")
    form.locator("select[name=f_land_type]").select_option("一般耕地")
    form.locator("input[name=f_area_m2]").fill("很大")
    form.locator("button[type=submit]").click()
    refused = town.locator("form[data-trigger=confirm]")
    errors = refused.locator(".field-error").all_inner_texts()
    assert errors == ["占地面积（平方米）：请填写数字"]
    assert refused.locator("textarea[name=f_verify_note]").input_value() == "现场核实：违法建房"
    assert refused.locator("select[name=f_land_type]").input_value() == "一般耕地"
    assert refused.locator("input[name=f_area_m2]").input_value() == "很大"
    refused.locator("input[name=f_area_m2]").fill("-5")
    refused.locator("button[type=submit]").click()
    errors = town.locator("form[data-trigger=confirm] .field-error").all_inner_texts()
    assert errors == ["占地面积（平方米）：不能小于 0"]
    assert town.locator("#state").inner_text() == "待镇街核实"
    leader.context.close()
    town.context.close()


def test_a_form_with_a_forged_csrf_token_changes_nothing(
    site: ApiServer, tokens: dict[str, str], browser: Browser
) -> None:
    case = open_case(site, tokens[REPORTER])
    leader = _as(browser, site, LEADER)
    leader.goto(f"/ui/cases/{case}")
    form = leader.locator("form[data-trigger=report]")
    form.locator("textarea[name=f_report_note]").fill("伪造的提交")
    leader.evaluate(
        "for (const i of document.querySelectorAll('input[name=csrf]')) i.value = 'forged'"
    )
    with leader.expect_response(lambda r: r.request.method == "POST") as answer:
        form.locator("button[type=submit]").click()
    assert answer.value.status == 403
    assert "安全校验未通过" in leader.locator("main").inner_text()
    leader.goto(f"/ui/cases/{case}")
    assert leader.locator("#state").inner_text() == "制止无效待报告"
    leader.context.close()


def test_a_script_in_a_case_field_is_shown_as_text(
    site: ApiServer, tokens: dict[str, str], browser: Browser
) -> None:
    script = "<script>window.__pwned = 1</script>"
    case = open_case(site, tokens[REPORTER], party=script, address="<img src=x onerror=alert(1)>")
    leader = _as(browser, site, LEADER)
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    leader.on("dialog", record)
    leader.goto(f"/ui/cases/{case}")
    assert leader.get_by_text(script).first.is_visible()
    assert leader.evaluate("window.__pwned") is None
    assert leader.locator("main img").count() == 0
    assert dialogs == []
    leader.context.close()


def test_every_page_fits_a_360_px_phone(
    site: ApiServer, tokens: dict[str, str], phone: Page, browser: Browser
) -> None:
    case = open_case(site, tokens[REPORTER], address="新华村一组" + "很长的地址" * 30)
    width = "document.documentElement.scrollWidth"
    phone.goto("/ui/login")
    assert phone.evaluate(width) <= 360
    sign_in(phone, LEADER)
    assert phone.url.endswith("/ui/tasks")
    assert phone.evaluate(width) <= 360
    phone.goto(f"/ui/cases/{case}")
    assert phone.locator("form[data-trigger=report]").count() == 1
    assert phone.evaluate(width) <= 360
    phone.goto("/ui/board?unit=ddk-bq")  # the board, drilled down to the villages
    assert phone.locator("tr[data-unit=ddk-bq-xh]").count() == 1
    assert phone.evaluate(width) <= 360
    phone.goto("/ui/cases/no-such-case")
    assert phone.evaluate(width) <= 360


def test_the_maps_fit_a_360_px_phone(site: ApiServer, tokens: dict[str, str], phone: Page) -> None:
    case = open_case(site, tokens[REPORTER], location=[106.4705, 29.4805])
    width = "document.documentElement.scrollWidth"
    phone.goto("/ui/login")
    sign_in(phone, LEADER)
    phone.goto(f"/ui/cases/{case}")
    drawn = phone.locator("#place svg.map")
    box = drawn.bounding_box()
    assert box is not None and 0 < box["width"] <= 360
    assert box["height"] == pytest.approx(box["width"] * 0.75, abs=2)  # the viewBox's 4:3
    assert drawn.locator(f"a[data-case='{case}'] circle").count() == 1
    assert phone.evaluate(width) <= 360
    phone.goto("/ui/board?unit=ddk-bq")
    board = phone.locator("#board-map svg.map").bounding_box()
    assert board is not None and 0 < board["width"] <= 360
    assert phone.evaluate(width) <= 360
    phone.locator(f"#board-map a[data-case='{case}']").click()  # a tap on the map opens the case
    assert phone.url.endswith(f"/ui/cases/{case}")


def test_another_villages_case_is_a_404_page(
    site: ApiServer, tokens: dict[str, str], browser: Browser
) -> None:
    theirs = open_case(site, tokens[OTHER_MEMBER], unit=OTHER_UNIT)
    leader = _as(browser, site, REPORTER)  # a 网格员 of 新华村一组: sees that group only
    answer = leader.goto(f"/ui/cases/{theirs}")
    assert answer is not None and answer.status == 404
    assert "没有找到这个案件" in leader.locator("main").inner_text()
    assert theirs not in leader.locator("main").inner_text()
    leader.goto("/ui/tasks")
    assert leader.locator(f"li.task[data-case='{theirs}']").count() == 0
    leader.context.close()
