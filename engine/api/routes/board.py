"""``/board``: the overdue board (超期预警) of the token's actor, and the cases of one cell.

The board counts the open cases of every unit the caller sees (where it holds a
role, and below); a ``unit`` outside that scope answers 404, as if it did not exist.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from engine.api.auth import PrincipalDep
from engine.api.board_schemas import BoardCasePage, BoardView
from engine.api.deps import ServicesDep
from engine.api.schemas import ErrorBody
from engine.cases.board import MAX_PAGE, BoardFilter

__all__ = ["router"]

router = APIRouter(tags=["board"])

Workflow = Annotated[str | None, Query(max_length=200, description="only this workflow")]
State = Annotated[str | None, Query(max_length=200, description="only cases in this state")]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in (401, 422, *codes)}


@router.get(
    "/board",
    response_model=BoardView,
    responses=_errors(404),
    summary="The overdue board: open, due-soon and overdue cases per unit of the caller's scope",
)
def get_board(
    services: ServicesDep,
    principal: PrincipalDep,
    workflow: Workflow = None,
    state: State = None,
    unit: Annotated[
        str | None, Query(max_length=200, description="this unit and everything below it")
    ] = None,
) -> JSONResponse:
    wanted = BoardFilter(workflow=workflow, state=state, unit=unit)
    view = services.app.board.board(wanted, viewer=principal.viewer)
    return JSONResponse(view.as_dict())


@router.get(
    "/board/cases",
    response_model=BoardCasePage,
    responses=_errors(404),
    summary="The cases behind one cell of the board (a unit's subtree and a bucket)",
)
def board_cases(
    services: ServicesDep,
    principal: PrincipalDep,
    unit: Annotated[str, Query(min_length=1, max_length=200, description="a unit code")],
    bucket: Annotated[Literal["open", "due_soon", "overdue"], Query()],
    workflow: Workflow = None,
    state: State = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
) -> JSONResponse:
    page = services.app.board.cases(
        unit,
        bucket,
        BoardFilter(workflow=workflow, state=state),
        viewer=principal.viewer,
        limit=limit,
        after=cursor,
    )
    return JSONResponse(page.as_dict())
