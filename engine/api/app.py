"""``create_api(app)``: the FastAPI application over one :class:`~engine.app.App`.

Routes are plain ``def`` functions: the engine is synchronous (one database
transaction per event), so Starlette runs each request in its thread pool.
With a loop (:class:`~engine.api.loops.ServeLoops`), the application starts it at
startup and stops it at shutdown, after the requests in flight have finished
(``scheduler.shutdown(wait=True)``: a sweep or a dispatch pass that is
running completes and commits).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from engine.api import errors
from engine.api.deps import Services
from engine.api.docs_page import install_docs
from engine.api.metrics import Counters
from engine.api.middleware import BodyLimit, CleanURL, OneCheckout
from engine.api.options import ApiOptions
from engine.api.routes import ROUTERS
from engine.api.routes.photos import MULTIPART_SLACK, PHOTO_UPLOAD
from engine.api.strict import known_query_parameters
from engine.pages import PREFIX, create_pages
from engine.pages.patrols import PATROL_FORM, form_limit

if TYPE_CHECKING:
    from engine.api.loops import ServeLoops
    from engine.app import App
    from engine.timers import SweepLoop

__all__ = ["create_api"]

DESCRIPTION = """\
Cases of the farmland-protection workflows, for backend services and duty staff.

Every route but `/healthz` and `/readyz` needs `Authorization: Bearer TOKEN`
(`gengbao token create --actor ID`). Errors are
`{"error": CODE, "message": TEXT, "details": {...}}`. POSTs on cases accept an
`Idempotency-Key` header: a repeat with the same key and body returns the first
response and applies nothing (`POST /patrols` refuses the header).
"""


def create_api(
    app: App, *, loop: ServeLoops | SweepLoop | None = None, options: ApiOptions | None = None
) -> FastAPI:
    options = options or ApiOptions.from_settings(app.settings)
    counters = Counters()
    services = Services(app, app.tokens, options, counters, loop)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if loop is not None:
            loop.start()
        try:
            yield
        finally:
            if loop is not None:
                await run_in_threadpool(loop.stop)

    api = FastAPI(
        title="gengbao",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(known_query_parameters)],
        docs_url=None,  # served from the package's own assets (engine/api/docs_page.py)
        redoc_url=None,
    )
    install_docs(api)
    api.state.services = services
    for router in ROUTERS:
        api.include_router(router)
    api.mount(PREFIX, create_pages(app, errors.status_of))  # pages for duty staff

    @api.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        """A browser opening the service's address lands on my tasks (or signs in first)."""
        return RedirectResponse(f"{PREFIX}/tasks", 303)

    errors.install(api)
    api.add_middleware(OneCheckout, engine=app.engine, counters=counters)  # innermost
    api.add_middleware(CleanURL)
    photo_limit = app.settings.photos.max_bytes + MULTIPART_SLACK
    patrol_form = (PATROL_FORM, form_limit(app.settings.photos.max_bytes))  # with its photos
    api.add_middleware(
        BodyLimit,
        max_bytes=options.max_body_bytes,
        uploads=[(PHOTO_UPLOAD, photo_limit), patrol_form],
        pages=PREFIX,
    )
    return api
