"""签收, 指派 and my tasks: ``POST /cases/{id}/ack``, ``POST /cases/{id}/assign``,
``GET /tasks`` (the token's actor), ``POST /notifications/{id}/ack``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from engine.api.assign_schemas import AssignBody, CaseAssigned, NotificationRead, TaskPage
from engine.api.auth import PrincipalDep
from engine.api.deps import ServicesDep
from engine.api.routes.cases import CaseId, IdempotencyKey
from engine.api.schemas import ErrorBody

__all__ = ["router"]

router = APIRouter(tags=["assignment"])

MAX_ID = 2**31 - 1


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in (401, 422, *codes)}


@router.post(
    "/cases/{case_id}/ack",
    response_model=CaseAssigned,
    responses=_errors(403, 404, 409),
    summary="Acknowledge a case (签收): the caller becomes its assignee in its current state",
)
def ack_case(
    case_id: CaseId,
    services: ServicesDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    view = services.app.assignments.ack(
        case_id, principal.actor, key=idempotency_key, viewer=principal.viewer
    )
    return JSONResponse(view.as_dict())


@router.post(
    "/cases/{case_id}/assign",
    response_model=CaseAssigned,
    responses=_errors(403, 404, 409),
    summary="Assign (or reassign) a case to a person who can act in its state (指派)",
)
def assign_case(
    case_id: CaseId,
    body: AssignBody,
    services: ServicesDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    view = services.app.assignments.assign(
        case_id, body.to, principal.actor, key=idempotency_key, viewer=principal.viewer
    )
    return JSONResponse(view.as_dict())


@router.get(
    "/tasks",
    response_model=TaskPage,
    responses=_errors(),
    summary="The caller's tasks: open cases it can act on now, most urgent first",
)
def list_tasks(
    services: ServicesDep,
    principal: PrincipalDep,
    overdue: Annotated[bool, Query(description="true: only tasks past their deadline")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    found = services.app.tasks.for_actor(principal.actor, overdue_only=overdue, limit=limit)
    return JSONResponse({"items": [t.as_dict() for t in found]})


@router.post(
    "/notifications/{notification_id}/ack",
    response_model=NotificationRead,
    responses=_errors(403, 404),
    summary="Acknowledge a notification sent to the caller (who was told, who read it)",
)
def ack_notification(
    notification_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    return JSONResponse(services.app.notification_reads.ack(notification_id, principal.actor))
