"""``/cases/{id}/signatures`` and ``/cases/{id}/parties``: a case's countersign (会签).

The token's actor signs or refuses as its pending party of the case's countersign;
a case outside its grid scope answers 404 as every case route does, a party it does
not hold 403, a state still waiting on other parties 409 ``countersign_pending`` to
an event (``POST /cases/{id}/events``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import Field

from engine.api.auth import PrincipalDep
from engine.api.deps import ServicesDep
from engine.api.routes.cases import IdempotencyKey
from engine.api.schemas import Case, ErrorBody, Name, Text, _Request, _Response
from engine.errors import EventRejected, InvalidData

__all__ = ["router"]

router = APIRouter(tags=["countersign"])

CaseId = Annotated[str, Path(max_length=100, description="a case id, e.g. C20260918-0042")]


class Signature(_Request):
    """Sign (or refuse, with the reason in *note*) as one party of the countersign."""

    decision: Literal["sign", "refuse"] = Field(examples=["sign"])
    role: Name | None = Field(
        default=None,
        description="the party (LEVEL.ROLE) when the actor holds several pending ones",
        examples=["district.dept_agri"],
    )
    note: Text | None = Field(
        default=None, description="the opinion (会签意见); for refuse: the reason, required"
    )


class Party(_Response):
    id: int
    state: str
    role: str = Field(examples=["district.dept_agri"])
    title: str
    status: str = Field(description="pending | signed | refused | cancelled")
    actor: str | None
    acted_at: datetime | None
    note: str | None
    deadline: datetime | None = Field(description="in the workflow's time zone")
    late: bool = Field(description="pending past its deadline")


class SignedCase(Case):
    parties: list[Party]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in (401, 422, *codes)}


@router.post(
    "/cases/{case_id}/signatures",
    response_model=SignedCase,
    responses=_errors(403, 404, 409),
    summary="Sign or refuse the case's countersign as one of its parties",
)
def sign(
    case_id: CaseId,
    body: Signature,
    services: ServicesDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    countersigns = services.app.countersigns
    try:
        if body.decision == "sign":
            view = countersigns.sign(
                case_id,
                principal.actor,
                role=body.role,
                note=body.note,
                key=idempotency_key,
                viewer=principal.viewer,
            )
        else:
            if body.note is None or not body.note.strip():
                raise InvalidData({"note": "is required to refuse: say why"})
            view = countersigns.refuse(
                case_id,
                principal.actor,
                reason=body.note,
                role=body.role,
                key=idempotency_key,
                viewer=principal.viewer,
            )
    except EventRejected as exc:
        services.counters.add(body.decision, "rejected", exc.code)
        raise
    services.counters.add(body.decision, "accepted")
    parties = countersigns.parties(case_id, viewer=principal.viewer)
    return JSONResponse({**view.as_dict(), "parties": [p.as_dict() for p in parties]})


@router.get(
    "/cases/{case_id}/parties",
    response_model=list[Party],
    responses=_errors(404),
    summary="The parties of the case's countersign: who signed, who is pending, who is late",
)
def parties(case_id: CaseId, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    found = services.app.countersigns.parties(case_id, viewer=principal.viewer)
    return JSONResponse([p.as_dict() for p in found])
