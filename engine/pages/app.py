"""The pages' FastAPI application, mounted at ``/ui`` by :func:`engine.api.app.create_api`.

A separate application so that the pages keep their own error handlers (HTML, not the
API's JSON), stay out of the OpenAPI schema, and read query strings (``?next=``) the
API's strict query check would refuse.  The outer application's middleware still
wraps it: one database checkout per request, the body size limit, the URL guard.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from engine.pages import actions, assessment, board, cases, errors, patrols, signin, tasks

if TYPE_CHECKING:
    from engine.app import App
    from engine.errors import GengbaoError

__all__ = ["PREFIX", "create_pages"]

PREFIX = "/ui"


def create_pages(app: App, status_of: Callable[[GengbaoError], int]) -> FastAPI:
    """The pages over *app*; *status_of* maps an engine error to its HTTP status (the
    API passes its own mapping, so a refusal has the same status on both)."""
    pages = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    pages.state.engine_app = app
    pages.state.status_of = status_of
    static = files("engine.pages") / "static"
    pages.mount("/static", StaticFiles(directory=str(static)), name="static")
    for module in (signin, tasks, cases, actions, board, patrols, assessment):
        pages.include_router(module.router)

    @pages.get("/")
    def home(request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/tasks", 303)

    errors.install(pages)
    return pages
