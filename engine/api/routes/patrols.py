"""``/patrols``: record patrols (巡查) in the ledger and read them back.

The grid permission of the ledger applies: only a person (or service account)
holding a role on the unit's chain — the unit or one of its ancestors — may
record a patrol there (403 otherwise) or read it.  ``GET /patrols`` lists the
patrols of the units where the caller holds a role and below; a patrol
outside that answers 404, as if it did not exist.

``POST /patrols`` does not take an ``Idempotency-Key``: the ledger has no
idempotency store for patrols, so the header is refused (422) rather than
silently ignored — a retry the client believes safe would record the patrol
twice and count it twice for the obligations.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from engine.api.auth import PrincipalDep
from engine.api.deps import ServicesDep
from engine.api.schemas import ErrorBody, Patrol, PatrolCreate, PatrolPage
from engine.errors import InvalidData, NotPermitted, UnknownPatrol, UnknownUnit

__all__ = ["router"]

router = APIRouter(tags=["patrols"])

DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
PatrolId = Annotated[str, Path(max_length=100, description="a patrol id, e.g. P20260918-7QK2MX")]


def _date(text: str | None, field: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidData({field: f"not a date: {text!r}"}) from None


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in (401, 422, *codes)}


def _moment(value: dt.datetime | None, tz: str, field: str) -> dt.datetime | None:
    """Aware (a time without an offset is in the server's time zone), and storable in UTC."""
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=ZoneInfo(tz))
    try:
        aware.astimezone(dt.UTC)
    except OverflowError:
        raise InvalidData({field: "is out of range"}) from None
    return aware


@router.post(
    "/patrols",
    status_code=201,
    response_model=Patrol,
    responses=_errors(403, 404, 413),
    summary="Record a patrol",
    description=(
        "The patroller is the token's actor, who must hold a role on the unit's chain. "
        "`started` and `ended` without an offset are in the server's time zone. "
        "No `Idempotency-Key`: the header is refused with 422."
    ),
)
def record_patrol(
    body: PatrolCreate, request: Request, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    if "idempotency-key" in request.headers:
        raise InvalidData({"Idempotency-Key": "not supported on POST /patrols; retry with care"})
    tz = services.app.settings.timezone
    view = services.app.patrols.ledger.record(
        body.unit,
        principal.actor,
        started=_moment(body.started, tz, "started"),
        ended=_moment(body.ended, tz, "ended"),
        route=body.route,
        area_m2=body.area_m2,
        findings=body.findings,
        suspected=body.suspected,
        attachments=body.attachments,
    )
    return JSONResponse(view.as_dict(), status_code=201)


@router.get(
    "/patrols",
    response_model=PatrolPage,
    responses=_errors(),
    summary="List patrols, oldest first",
)
def list_patrols(
    services: ServicesDep,
    principal: PrincipalDep,
    unit: Annotated[
        str | None, Query(max_length=200, description="this unit and everything below it")
    ] = None,
    date_from: Annotated[
        str | None,
        Query(
            alias="from",
            pattern=DATE,
            description="patrols started on or after this local date (YYYY-MM-DD)",
        ),
    ] = None,
    date_to: Annotated[
        str | None,
        Query(
            alias="to",
            pattern=DATE,
            description="patrols started on or before this local date (YYYY-MM-DD)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=100, description="next_cursor of the previous page")
    ] = None,
) -> JSONResponse:
    first, last = _date(date_from, "from"), _date(date_to, "to")
    if first is not None and last is not None and last < first:
        raise InvalidData({"to": f"{last} is before from {first}"})
    try:
        rows = services.app.patrols.ledger.list(
            unit, first, last, viewer=principal.viewer, limit=limit, after=cursor
        )
    except UnknownUnit:
        raise InvalidData({"unit": f"unknown grid unit {unit!r}"}) from None
    items = [view.as_dict() for view in rows]
    next_cursor = rows[-1].id if len(rows) == limit else None
    return JSONResponse({"items": items, "next_cursor": next_cursor})


@router.get(
    "/patrols/{patrol_id}",
    response_model=Patrol,
    responses=_errors(404),
    summary="One patrol",
)
def get_patrol(patrol_id: PatrolId, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    try:
        view = services.app.patrols.ledger.get(patrol_id, viewer=principal.viewer)
    except NotPermitted:
        raise UnknownPatrol(patrol_id) from None
    return JSONResponse(view.as_dict())
