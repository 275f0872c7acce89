"""``/cases/{id}/transfers``: send a case to another unit (移送/转办), accept or return it.

The receiving unit's people see a case while its transfer waits for them; an
actor that sees neither gets 404, as for any case outside its scope.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from engine.api.auth import PrincipalDep
from engine.api.deps import ServicesDep
from engine.api.routes.cases import CaseId, IdempotencyKey, _errors
from engine.api.schemas import Case, TransferAccept, TransferHop, TransferReturn, TransferSend

__all__ = ["router"]

router = APIRouter(tags=["transfers"])

TransferId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a transfer id (GET …/transfers)")]


@router.post(
    "/cases/{case_id}/transfers",
    status_code=201,
    response_model=Case,
    responses=_errors(403, 404, 409),
    summary="Transfer a case to another unit or a department",
)
def send_transfer(
    case_id: CaseId,
    body: TransferSend,
    services: ServicesDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    view = services.app.transfers.transfer(
        case_id,
        body.to,
        principal.actor,
        body.reason,
        key=idempotency_key,
        viewer=principal.viewer,
    )
    return JSONResponse(view.as_dict(), status_code=201)


@router.post(
    "/cases/{case_id}/transfers/{transfer_id}/accept",
    response_model=Case,
    responses=_errors(403, 404, 409),
    summary="Accept a pending transfer (受理): the case moves to the receiving unit",
)
def accept_transfer(
    case_id: CaseId,
    transfer_id: TransferId,
    body: TransferAccept,
    services: ServicesDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    view = services.app.transfers.accept(
        case_id,
        principal.actor,
        body.note,
        transfer_id=transfer_id,
        key=idempotency_key,
        viewer=principal.viewer,
    )
    return JSONResponse(view.as_dict())


@router.post(
    "/cases/{case_id}/transfers/{transfer_id}/return",
    response_model=Case,
    responses=_errors(403, 404, 409),
    summary="Return a pending transfer (退回) with a reason: the case stays",
)
def return_transfer(
    case_id: CaseId,
    transfer_id: TransferId,
    body: TransferReturn,
    services: ServicesDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    view = services.app.transfers.return_(
        case_id,
        principal.actor,
        body.reason,
        transfer_id=transfer_id,
        key=idempotency_key,
        viewer=principal.viewer,
    )
    return JSONResponse(view.as_dict())


@router.get(
    "/cases/{case_id}/transfers",
    response_model=list[TransferHop],
    responses=_errors(404),
    summary="Every transfer of a case, oldest first",
)
def list_transfers(case_id: CaseId, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    return JSONResponse(services.app.transfers.transfers(case_id, viewer=principal.viewer))
