"""``/cases``: open cases, fire events, read cases and their history.

A principal sees the cases in the units where it holds a role and below
(:mod:`engine.grid.visibility`, applied by the case service in its queries); a
case outside its scope answers 404, as if it did not exist.  What it may *do*
to a case it sees is the engine's decision (403 with the roles needed).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import JSONResponse

from engine.api.auth import PrincipalDep
from engine.api.deps import ServicesDep
from engine.api.schemas import (
    Case,
    CaseBatch,
    CaseBatchResult,
    CaseCreate,
    CaseDetail,
    CasePage,
    ErrorBody,
    EventSubmit,
    HistoryEntry,
)
from engine.cases.batch import NewCase
from engine.cases.service import CaseFilter
from engine.errors import EventRejected, ImportRefused, InvalidData, UnknownUnit

__all__ = ["router"]

router = APIRouter(tags=["cases"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="a repeat with the same key and body returns the first response",
    ),
]
CaseId = Annotated[str, Path(max_length=100, description="a case id, e.g. C20260918-0042")]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in (401, 422, *codes)}


@router.post(
    "/cases",
    status_code=201,
    response_model=Case,
    responses=_errors(403, 404, 413),
    summary="Open a case",
)
def create_case(
    body: CaseCreate,
    services: ServicesDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    try:
        view = services.app.cases.create_case(
            body.workflow, body.unit, principal.actor, body.data, idempotency_key
        )
    except EventRejected as exc:
        services.counters.add("create", "rejected", exc.code)
        raise
    services.counters.add("create", "accepted")
    return JSONResponse(view.as_dict(), status_code=201)


@router.post(
    "/cases/batch",
    response_model=CaseBatchResult,
    responses=_errors(404, 413),
    summary="Open many cases at once (at most 1000)",
)
def create_cases(body: CaseBatch, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    items = [
        NewCase(line=n, unit=i.unit, data=i.data, key=i.key)
        for n, i in enumerate(body.items, start=1)
    ]
    result = services.app.cases.create_cases(
        body.workflow, items, principal.actor, skip_invalid=body.skip_invalid
    )
    if result.refused:
        services.counters.add("import", "rejected", ImportRefused.code)
        answer = result.as_dict()
        raise ImportRefused([p.as_dict() for p in result.problems], answer["items"])
    services.counters.add("import", "accepted")
    return JSONResponse(result.as_dict())


@router.get("/cases", response_model=CasePage, responses=_errors(), summary="List cases")
def list_cases(
    services: ServicesDep,
    principal: PrincipalDep,
    workflow: Annotated[str | None, Query(max_length=200)] = None,
    state: Annotated[str | None, Query(max_length=200)] = None,
    unit: Annotated[
        str | None, Query(max_length=200, description="this unit and everything below it")
    ] = None,
    open: Annotated[bool | None, Query(description="true: open cases; false: closed")] = None,
    overdue: Annotated[
        bool | None, Query(description="true: open cases past their current deadline")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
) -> JSONResponse:
    wanted = CaseFilter(
        workflow=workflow,
        state=state,
        unit=unit,
        open=open,
        overdue=overdue,
        limit=limit,
        after=cursor,
    )
    try:
        views = services.app.cases.list_cases(wanted, viewer=principal.viewer)
    except UnknownUnit:
        raise InvalidData({"unit": f"unknown grid unit {unit!r}"}) from None
    items = [v.as_dict() for v in views]
    next_cursor = views[-1].id if len(views) == limit else None
    return JSONResponse({"items": items, "next_cursor": next_cursor})


@router.get(
    "/cases/{case_id}",
    response_model=CaseDetail,
    responses=_errors(404),
    summary="One case, with its pending timers and overdue facts",
)
def get_case(case_id: CaseId, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    view = services.app.cases.get_case(case_id, viewer=principal.viewer)
    timing = services.app.timers.describe(case_id, viewer=principal.viewer)
    timing.update(services.app.assignments.describe(case_id, viewer=principal.viewer))
    pending = services.app.transfers.pending(case_id, viewer=principal.viewer)
    return JSONResponse({**view.as_dict(), **timing, "transfer": pending})


@router.post(
    "/cases/{case_id}/events",
    response_model=Case,
    responses=_errors(403, 404, 409, 413),
    summary="Fire a trigger on a case",
)
def submit_event(
    case_id: CaseId,
    body: EventSubmit,
    services: ServicesDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    try:
        view = services.app.cases.submit_event(
            case_id,
            body.trigger,
            principal.actor,
            body.payload,
            idempotency_key,
            revision=body.revision,
            viewer=principal.viewer,
        )
    except EventRejected as exc:
        services.counters.add("event", "rejected", exc.code)
        raise
    services.counters.add("event", "accepted")
    response = JSONResponse(view.as_dict())
    if body.deprecated_key is not None:  # a miscellaneous persistent warning, as Kubernetes does
        response.headers["Warning"] = f'299 - "{body.deprecated_key} is deprecated; use revision"'
    return response


@router.get(
    "/cases/{case_id}/history",
    response_model=list[HistoryEntry],
    responses=_errors(404),
    summary="A case's history, oldest first",
)
def case_history(case_id: CaseId, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    entries = services.app.cases.history(case_id, viewer=principal.viewer)
    return JSONResponse([e.as_dict() for e in entries])
