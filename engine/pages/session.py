"""Who is signed in: the session cookie, the services, the CSRF check of every form.

The cookie (``gb_session``) holds the session's random id; it is ``HttpOnly`` (no
script reads it), ``SameSite=Lax`` (another site's form posts without it) and
``Secure`` when the page came over HTTPS.  The session row
(:class:`~engine.people.UiSession`) holds the CSRF token that every form of the
pages carries in its ``csrf`` field; a POST whose field is missing or differs is
refused (:class:`~engine.errors.CsrfRefused`) before anything else happens.  The
sign-in form, posted before there is a session, checks the same way against a
random value in its own short-lived cookie (``gb_login``: a double-submit token).
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from engine.errors import CsrfRefused
from engine.people import UiSession

if TYPE_CHECKING:
    from engine.app import App
    from engine.errors import GengbaoError

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "app_of",
    "check_csrf",
    "current",
    "login_token",
    "safe_next",
    "set_cookie",
    "status_of",
    "to_login",
]

SESSION_COOKIE = "gb_session"
LOGIN_COOKIE = "gb_login"


def app_of(request: Request) -> App:
    """The composition root the pages call, as the API's routes do."""
    app: App = request.app.state.engine_app
    return app


def status_of(request: Request, exc: GengbaoError) -> int:
    """The HTTP status of *exc*: the API's one mapping, handed to the pages at start."""
    status: int = request.app.state.status_of(exc)
    return status


def current(request: Request) -> UiSession | None:
    """The signed-in person's session, or None (also kept on ``request.state``)."""
    found = app_of(request).ui_sessions.find(request.cookies.get(SESSION_COOKIE))
    request.state.ui_session = found
    return found


def check_csrf(session: UiSession, sent: object) -> None:
    if not isinstance(sent, str) or not session.csrf_matches(sent):
        raise CsrfRefused


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of the pages only (no open redirect)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/tasks"


def to_login(request: Request) -> RedirectResponse:
    """Off to the sign-in page, coming back here afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ui/login?next={quote(safe_next(here), safe='/')}", 303)


def login_token(request: Request) -> str:
    """The sign-in form's CSRF value: the one in its cookie, or a new one."""
    known = request.cookies.get(LOGIN_COOKIE)
    if known and 20 <= len(known) <= 100 and known.isascii():
        return known
    return secrets.token_urlsafe(24)


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/ui",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
