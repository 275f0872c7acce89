"""``/grid/units/{code}``: a unit of the grid, its chain, its children and who holds roles on it.

A viewer sees the units of its own chain: the subtrees it holds roles in, and
their ancestors (:func:`engine.grid.visibility.on_chain`, applied by the grid
service); any other unit is 404, as if it did not exist.  Contact
details (phones, e-mails, webhooks) are not shown.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from engine.api.auth import PrincipalDep
from engine.api.deps import ServicesDep
from engine.api.schemas import ErrorBody, Unit

__all__ = ["router"]

router = APIRouter(tags=["grid"])


@router.get(
    "/grid/units/{code}",
    response_model=Unit,
    responses={code: {"model": ErrorBody} for code in (401, 404, 422)},
    summary="A grid unit",
)
def get_unit(
    code: Annotated[str, Path(max_length=200)], services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    return JSONResponse(services.app.grid.unit(code, viewer=principal.viewer))
