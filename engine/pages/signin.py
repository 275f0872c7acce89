"""``/ui/login`` and ``/ui/logout``: sign in with a person id (or phone) and password.

A refused sign-in shows the form again with what was typed (never the password) and
one message whatever was wrong; repeated failures lock the person out for a while
(:mod:`engine.people.credentials`) and the page says how long.  Signing out deletes
the session's row, so the cookie is worthless even if it was copied.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from engine.errors import CsrfRefused, SignInLocked, SignInRefused
from engine.pages.forms import FormDep
from engine.pages.render import page
from engine.pages.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    app_of,
    check_csrf,
    current,
    login_token,
    safe_next,
    set_cookie,
    to_login,
)

__all__ = ["router"]

router = APIRouter()


def _next_param(request: Request) -> str | None:
    return request.query_params.get("next")


NextDep = Annotated[str | None, Depends(_next_param)]


def _form_page(
    request: Request, target: str, login: str = "", error: str = "", status: int = 200
) -> HTMLResponse:
    token = login_token(request)
    response = page(
        request,
        "login.html",
        status,
        title="登录",
        csrf=token,
        next=target,
        login=login,
        error=error,
    )
    set_cookie(request, response, LOGIN_COOKIE, token, max_age=3600)
    return response


@router.get("/login")
def login_form(request: Request, next: NextDep = None) -> Response:
    if current(request) is not None:
        return RedirectResponse(safe_next(next), 303)
    return _form_page(request, safe_next(next))


@router.post("/login")
def login(request: Request, form: FormDep) -> Response:
    expected = request.cookies.get(LOGIN_COOKIE)
    sent = form.get("csrf")
    if not expected or not sent or sent != expected:
        raise CsrfRefused
    target = safe_next(form.get("next"))
    who = form.get("login", "").strip()
    app = app_of(request)
    try:
        person = app.credentials.sign_in(who, form.get("password", ""))
    except SignInLocked as exc:
        message = f"连续登录失败次数过多，请 {_wait(exc.seconds)} 后再试。"
        return _form_page(request, target, who, message, 429)
    except SignInRefused:
        return _form_page(request, target, who, "账号或密码不正确。", 401)
    token = app.ui_sessions.open(person)
    response = RedirectResponse(target, 303)
    lifetime = int(app.ui_sessions.lifetime.total_seconds())
    set_cookie(request, response, SESSION_COOKIE, token, max_age=lifetime)
    response.delete_cookie(LOGIN_COOKIE, path="/ui")
    return response


@router.post("/logout")
def logout(request: Request, form: FormDep) -> Response:
    session = current(request)
    if session is None:
        return to_login(request)
    check_csrf(session, form.get("csrf"))
    app_of(request).ui_sessions.close(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/ui/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/ui")
    return response


def _wait(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} 秒"
    return f"{(seconds + 59) // 60} 分钟"
