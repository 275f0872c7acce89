"""ASGI middleware run before routing: one database checkout per request, the body size
limit and a guard on the URL.

``OneCheckout`` gives each HTTP request one pooled connection, shared by its token
lookup, its reads and its event (:func:`engine.store.one_checkout`), returned to the
pool once the response is sent; it counts the requests and their checkouts for
``/metrics``.

``BodyLimit`` refuses a declared ``Content-Length`` over the limit at once and
counts the bytes of a body sent without one (chunked), refusing it as soon as
it passes the limit; either way the client gets 413 in the usual error shape.
An upload route (``uploads``: a path pattern and its own limit, e.g. the patrol
photos' ``photos.max_bytes`` plus the multipart framing) gets its own limit.  A
path under ``pages`` (``/ui``) is refused by the pages' own 413 page (HTML, not the
API's JSON): its body is refused as the route reads it — at the first read when
the declared length is already over — and the pages' error handler answers.
``CleanURL`` refuses a path or query string holding a NUL character (422): no
text column holds one, and PostgreSQL would refuse it with a driver error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.api.errors import error_response
from engine.api.metrics import Counters
from engine.store import begin_unit, end_unit

__all__ = ["BodyLimit", "CleanURL", "OneCheckout"]


class OneCheckout:
    def __init__(self, app: ASGIApp, engine: Any, counters: Counters) -> None:
        self.app = app
        self.engine = engine
        self.counters = counters

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        shared, token = begin_unit(self.engine)
        try:
            await self.app(scope, receive, send)
        finally:
            end_unit(token)
            if shared.checked_out:  # returning it may roll back: a round trip, not here
                await run_in_threadpool(shared.close)
            self.counters.request(shared.checkouts)


class BodyLimit:
    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        uploads: Sequence[tuple[re.Pattern[str], int]] = (),
        pages: str | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.uploads = list(uploads)
        self.pages = pages

    def _limit(self, scope: Scope) -> int:
        path = str(scope.get("path", ""))
        for pattern, limit in self.uploads:
            if scope.get("method") == "POST" and pattern.fullmatch(path):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self._limit(scope)
        refusal = f"request body is larger than {max_bytes} bytes"
        declared = _header(scope, b"content-length")
        over = declared is not None and declared.isdigit() and int(declared) > max_bytes
        path = str(scope.get("path", ""))
        pages = self.pages is not None and (path + "/").startswith(self.pages.rstrip("/") + "/")
        if declared is not None and (not declared.isdigit() or over) and not (over and pages):
            if declared.isdigit():
                response = error_response(413, "body_too_large", refusal, {"max_bytes": max_bytes})
            else:
                response = error_response(400, "bad_request", "invalid Content-Length header")
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            if over:  # a page's declared body is over: refused at its first read
                raise HTTPException(413, refusal)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    # FastAPI re-raises HTTPException from body reading: the 413 handler answers.
                    raise HTTPException(413, refusal)
            return message

        await self.app(scope, limited, send)


class CleanURL:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"")
        ):
            response = error_response(
                422,
                "invalid_request",
                "invalid request: the URL holds a NUL character",
                {"fields": {"url": "holds a NUL character"}},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    headers: Any = scope.get("headers", [])
    for key, value in headers:
        if key == name:
            text: str = value.decode("latin-1").strip()
            return text
    return None
