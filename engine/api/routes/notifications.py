"""``/notifications``: deliveries of the notification outbox, newest last.

A principal sees the deliveries about cases in its scope.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select

from engine.api.auth import PrincipalDep
from engine.api.deps import ServicesDep
from engine.api.routes.cases import visible_case
from engine.api.schemas import Delivery, ErrorBody
from engine.db import read_only
from engine.tables import cases, units

__all__ = ["router"]

router = APIRouter(tags=["notifications"])

Status = Literal["pending", "sending", "sent", "dead", "skipped"]


@router.get(
    "/notifications",
    response_model=list[Delivery],
    responses={code: {"model": ErrorBody} for code in (401, 404, 422)},
    summary="Notification deliveries",
)
def list_notifications(
    services: ServicesDep,
    principal: PrincipalDep,
    status: Status | None = None,
    case: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    if case is not None:
        visible_case(services, principal, case)
    rows = services.app.dispatcher.list(status, case, limit)
    ids = {r["case"] for r in rows if r["case"] is not None}
    with read_only(services.app.engine).connect() as conn:
        paths = dict(
            conn.execute(
                select(cases.c.id, units.c.path)
                .join(units, units.c.code == cases.c.unit_code)
                .where(cases.c.id.in_(ids))
            ).all()
        )
    shown = [r for r in rows if r["case"] is not None and principal.sees(paths.get(r["case"], ""))]
    return JSONResponse(shown)
