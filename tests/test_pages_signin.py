"""Signing in to the pages, on both backends: passwords, the lock-out after repeated
failures (kept in the database), sessions, the CSRF check, the CLI that sets passwords.

The credential service is tested on the ``app`` fixture with its fake clock; the
HTTP side on a real ``gengbao serve`` per backend, driven with httpx as a browser
would drive it (cookies, form posts, redirects not followed).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from engine.app import App
from engine.clock import FixedClock
from engine.errors import PasswordRefused, SignInLocked, SignInRefused, UnknownPerson
from engine.people import Credentials
from tests.support.api_server import ApiServer
from tests.support.farmland import REPORTER
from tests.support.pages import LEADER, PASSWORD, open_case, set_passwords

LEADER_PHONE = "13800000010"  # the demo grid's phone of 韦春梅 (p-bq-xh-leader)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


# -- the credential service ------------------------------------------------------------


def test_a_password_signs_its_person_in_by_id_or_by_phone(app: App) -> None:
    app.credentials.set_password(LEADER, PASSWORD)
    assert app.credentials.sign_in(LEADER, PASSWORD) == LEADER
    assert app.credentials.sign_in(f" {LEADER_PHONE} ", PASSWORD) == LEADER
    with pytest.raises(SignInRefused):
        app.credentials.sign_in(LEADER, PASSWORD + "x")
    with pytest.raises(SignInRefused):
        app.credentials.sign_in(REPORTER, PASSWORD)  # no password set: the same refusal
    with pytest.raises(SignInRefused):
        app.credentials.sign_in("nobody", PASSWORD)


def test_only_people_of_the_grid_get_passwords_of_a_sensible_length(app: App) -> None:
    with pytest.raises(UnknownPerson):
        app.credentials.set_password("nobody", PASSWORD)
    with pytest.raises(PasswordRefused, match="at least 8"):
        app.credentials.set_password(LEADER, "short")
    with pytest.raises(PasswordRefused, match="at most 200"):
        app.credentials.set_password(LEADER, "x" * 201)
    assert not app.credentials.has_password(LEADER)


def test_repeated_failures_lock_the_person_out_for_everyone_until_it_passes(
    app: App, clock: FixedClock
) -> None:
    app.credentials.set_password(LEADER, PASSWORD)
    free = app.credentials.policy.free_failures
    for _ in range(free - 1):
        with pytest.raises(SignInRefused) as refused:
            app.credentials.sign_in(LEADER, "wrong-password")
        assert not isinstance(refused.value, SignInLocked)
    with pytest.raises(SignInLocked) as locked:
        app.credentials.sign_in(LEADER, "wrong-password")
    assert locked.value.seconds == app.credentials.policy.lock_seconds
    # another process (a new service on the same database) sees the same lock-out
    other = Credentials(app.engine, clock)
    with pytest.raises(SignInLocked):
        other.sign_in(LEADER, PASSWORD)  # even the right password waits
    clock.advance(timedelta(seconds=locked.value.seconds))
    with pytest.raises(SignInLocked) as longer:  # one more failure doubles the wait
        other.sign_in(LEADER, "wrong-password")
    assert longer.value.seconds == 2 * app.credentials.policy.lock_seconds
    clock.advance(timedelta(seconds=longer.value.seconds))
    assert other.sign_in(LEADER, PASSWORD) == LEADER  # and a success resets the count
    with pytest.raises(SignInRefused) as again:
        other.sign_in(LEADER, "wrong-password")
    assert not isinstance(again.value, SignInLocked)


def test_a_session_ends_when_it_expires_or_is_closed(app: App, clock: FixedClock) -> None:
    token = app.ui_sessions.open(LEADER)
    found = app.ui_sessions.find(token)
    assert found is not None and found.person == LEADER and found.name == "韦春梅"
    assert found.csrf_matches(found.csrf) and not found.csrf_matches("forged")
    assert app.ui_sessions.find(token + "x") is None
    clock.advance(app.ui_sessions.lifetime)
    assert app.ui_sessions.find(token) is None
    second = app.ui_sessions.open(LEADER)
    app.ui_sessions.close(second)
    assert app.ui_sessions.find(second) is None


# -- the CLI and the pages over HTTP ---------------------------------------------------


@pytest.fixture(scope="module")
def ready(server: ApiServer) -> ApiServer:
    set_passwords(server, LEADER)
    return server


@pytest.fixture
def browser(ready: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ready.base_url, timeout=30.0) as client:
        yield client


def _sign_in(
    client: httpx.Client, login: str, password: str = PASSWORD, next: str = "/ui/tasks"
) -> httpx.Response:
    form = client.get("/ui/login")
    token = CSRF.search(form.text)
    assert token is not None, form.text
    data = {"csrf": token.group(1), "login": login, "password": password, "next": next}
    return client.post("/ui/login", data=data)


def test_set_password_reads_standard_input_and_names_an_unknown_person(ready: ApiServer) -> None:
    unknown = ready.cli("person", "set-password", "nobody", input=PASSWORD + "\n", check=False)
    assert unknown.returncode == 1
    assert "unknown person 'nobody'" in unknown.stderr
    nothing = ready.cli("person", "set-password", LEADER, input="", check=False)
    assert nothing.returncode == 1 and "no password on standard input" in nothing.stderr
    argument = ready.cli("person", "set-password", LEADER, PASSWORD, check=False)
    assert argument.returncode == 2  # a password is never an argument


def test_signing_in_and_out(browser: httpx.Client, ready: ApiServer) -> None:
    assert browser.get("/").headers["location"] == "/ui/tasks"
    assert browser.get("/ui/tasks").headers["location"] == "/ui/login?next=/ui/tasks"
    signed = _sign_in(browser, LEADER_PHONE)
    assert signed.status_code == 303 and signed.headers["location"] == "/ui/tasks"
    cookie = signed.headers["set-cookie"]
    assert "gb_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    tasks = browser.get("/ui/tasks")
    assert tasks.status_code == 200 and "我的待办" in tasks.text
    token = CSRF.search(tasks.text)
    assert token is not None
    out = browser.post("/ui/logout", data={"csrf": token.group(1)})
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    copied = httpx.Client(base_url=ready.base_url, cookies={"gb_session": _value(cookie)})
    with copied:  # the old cookie opens nothing: its row is gone
        assert copied.get("/ui/tasks").status_code == 303


def _value(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0].split("=", 1)[1]


@pytest.mark.parametrize("elsewhere", ["//evil.example/ui/", "https://evil.example/", "/cases"])
def test_signing_in_leads_only_to_a_page(browser: httpx.Client, elsewhere: str) -> None:
    signed = _sign_in(browser, LEADER, next=elsewhere)
    assert signed.status_code == 303 and signed.headers["location"] == "/ui/tasks"


def test_a_post_without_its_csrf_token_is_refused_and_changes_nothing(
    browser: httpx.Client, ready: ApiServer
) -> None:
    case = open_case(ready, ready.token(REPORTER))
    assert _sign_in(browser, LEADER).status_code == 303
    event = {"trigger": "report", "f_report_note": "报告", "revision": "2"}
    for token in (None, "forged"):
        data = dict(event, **({"csrf": token} if token else {}))
        refused = browser.post(f"/ui/cases/{case}/events", data=data)
        assert refused.status_code == 403
        assert "text/html" in refused.headers["content-type"]
        assert "安全校验未通过" in refused.text
    page = browser.get(f"/ui/cases/{case}")
    assert '<dd id="state">制止无效待报告</dd>' in page.text
    with httpx.Client(base_url=ready.base_url) as stranger:  # no sign-in cookie either
        forged = stranger.post("/ui/login", data={"login": LEADER, "password": PASSWORD})
        assert forged.status_code == 403


def test_wrong_passwords_are_slowed_down(browser: httpx.Client, ready: ApiServer) -> None:
    ready.cli("person", "set-password", REPORTER, input=PASSWORD + "\n")
    answers = [_sign_in(browser, REPORTER, "not-the-password").status_code for _ in range(5)]
    assert answers == [401, 401, 401, 401, 429]
    locked = _sign_in(browser, REPORTER)
    assert locked.status_code == 429
    assert "连续登录失败次数过多" in locked.text
    assert REPORTER in locked.text  # what was typed stays in the form (not the password)
    assert PASSWORD not in locked.text


def test_errors_are_pages_not_tracebacks(browser: httpx.Client) -> None:
    assert _sign_in(browser, LEADER).status_code == 303
    missing = browser.get("/ui/cases/C20990101-0001")
    assert missing.status_code == 404 and "没有找到这个案件" in missing.text
    nowhere = browser.get("/ui/nowhere")
    assert nowhere.status_code == 404 and "text/html" in nowhere.headers["content-type"]
    assert "Traceback" not in missing.text + nowhere.text
