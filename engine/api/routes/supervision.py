"""``/cases/{id}/supervisions``: supervision notices (督办) on a case.

The principal is the actor: it issues a notice if it holds one of the workflow's
supervision roles on a unit above the case's (403 otherwise), replies if it is on
the case's own unit or among those the notice was addressed to.  A case outside its
scope is 404; a closed case, a workflow without supervision or a notice already
answered is 409 ``supervision_refused``.  ``Idempotency-Key`` works as on events.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from engine.api.auth import PrincipalDep
from engine.api.deps import ServicesDep
from engine.api.routes.cases import CaseId, IdempotencyKey, _errors
from engine.api.schemas import MAX_TEXT, Case
from engine.errors import EventRejected

__all__ = ["router"]

router = APIRouter(tags=["supervision"])

_TEXT = Field(min_length=1, max_length=MAX_TEXT, description=f"at most {MAX_TEXT} characters")


class SupervisionIssue(BaseModel):
    """Issue a notice: what is asked, and (optionally) the deadline of the answer."""

    model_config = ConfigDict(extra="forbid")
    note: str = _TEXT
    within: str | None = Field(
        default=None,
        max_length=100,
        description="30m, 2h, 3d or '3 working days'; default: the workflow's",
        examples=["3 working days"],
    )


class SupervisionReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = _TEXT


class Supervision(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int
    case: str
    state: str
    unit: str
    issued_by: str
    issued_at: str
    note: str
    deadline_at: str
    status: str = Field(description="open | answered | cancelled")
    answer: str | None = Field(description="moved (the case moved on) | replied")
    reply: str | None
    answered_by: str | None
    answered_at: str | None
    label: str


class SupervisionAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")
    case: Case
    supervision: Supervision


SupervisionId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a supervision id")]


def _answer(services: Any, kind: str, call: Any) -> JSONResponse:
    try:
        view, notice = call()
    except EventRejected as exc:
        services.counters.add(kind, "rejected", exc.code)
        raise
    services.counters.add(kind, "accepted")
    return JSONResponse({"case": view.as_dict(), "supervision": notice.as_dict()})


@router.post(
    "/cases/{case_id}/supervisions",
    response_model=SupervisionAnswer,
    responses=_errors(403, 404, 409, 413),
    summary="Issue a supervision notice (督办) on an open case",
)
def supervise(
    case_id: CaseId,
    body: SupervisionIssue,
    services: ServicesDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return _answer(
        services,
        "supervise",
        lambda: services.app.supervision.supervise(
            case_id,
            principal.actor,
            body.note,
            body.within,
            key=idempotency_key,
            viewer=principal.viewer,
        ),
    )


@router.post(
    "/cases/{case_id}/supervisions/{supervision_id}/reply",
    response_model=SupervisionAnswer,
    responses=_errors(403, 404, 409, 413),
    summary="Answer a supervision notice in writing",
)
def reply(
    case_id: CaseId,
    supervision_id: SupervisionId,
    body: SupervisionReply,
    services: ServicesDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return _answer(
        services,
        "supervise_reply",
        lambda: services.app.supervision.reply(
            case_id,
            principal.actor,
            body.note,
            supervision_id,
            key=idempotency_key,
            viewer=principal.viewer,
        ),
    )


@router.get(
    "/cases/{case_id}/supervisions",
    response_model=list[Supervision],
    responses=_errors(404),
    summary="A case's supervision notices, oldest first, each with its status now",
)
def supervisions(case_id: CaseId, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    notices = services.app.supervision.supervisions(case_id, viewer=principal.viewer)
    return JSONResponse([s.as_dict() for s in notices])
