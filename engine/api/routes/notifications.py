"""``/notifications``: deliveries of the notification outbox, newest last.

A principal sees the deliveries about cases (and patrol notices about units)
in its scope; the scope and the paging are in the query.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from engine.api.auth import PrincipalDep
from engine.api.deps import ServicesDep
from engine.api.schemas import DeliveryPage, ErrorBody

__all__ = ["router"]

router = APIRouter(tags=["notifications"])

MAX_ID = 2**31 - 1  # delivery ids are 32-bit integers on PostgreSQL

Status = Literal["pending", "sending", "sent", "dead", "skipped"]


@router.get(
    "/notifications",
    response_model=DeliveryPage,
    responses={code: {"model": ErrorBody} for code in (401, 404, 422)},
    summary="Notification deliveries in the caller's scope, oldest first, a page at a time",
)
def list_notifications(
    services: ServicesDep,
    principal: PrincipalDep,
    status: Status | None = None,
    case: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[
        int | None,
        Query(ge=0, le=MAX_ID, description="next_cursor of the previous page"),
    ] = None,
) -> JSONResponse:
    rows = services.app.dispatcher.list(status, case, limit, after=cursor, viewer=principal.viewer)
    next_cursor = rows[-1]["id"] if len(rows) == limit else None
    return JSONResponse({"items": rows, "next_cursor": next_cursor})
