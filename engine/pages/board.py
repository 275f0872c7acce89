"""``/ui/board`` (超期预警): open, due-soon and overdue cases per unit, drilling down.

Without ``?unit=`` the board lists the signed-in person's own outermost units; with
it, the children of that unit (which must be in their scope: else a 404 page).  Each
row links to its children and to the list of its open or overdue cases
(``/ui/board/cases?unit=…&only=overdue``), read with the case service's filters.
The counts come from the board service (:class:`~engine.cases.board.Board`, the same
as ``GET /board`` and ``gengbao board``): due soon is each state's reminder window.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from engine.cases.board import BoardFilter
from engine.cases.records import CaseFilter
from engine.errors import UnknownUnit
from engine.pages.render import error_page, local_time, page
from engine.pages.session import app_of, current, to_login

__all__ = ["router"]

router = APIRouter()

LIST_LIMIT = 200
_COUNTS = ("open", "due_soon", "overdue")


def _param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value[:100] if value else None


@router.get("/board")
def board(request: Request) -> Response:
    session = current(request)
    if session is None:
        return to_login(request)
    app = app_of(request)
    unit = _param(request, "unit")
    here = app.grid.unit(unit, viewer=session.person) if unit else None  # else a 404
    counted = app.board.board(BoardFilter(unit=unit), viewer=session.person).units
    depth = 1 if unit else 0  # the unit's children, or the viewer's outermost units
    rows = [
        {
            "code": u.unit,
            "name": u.name,
            "open": u.open,
            "due_soon": u.due_soon,
            "overdue": u.overdue,
            "children": sum(1 for c in counted if c.parent == u.unit),
        }
        for u in counted
        if u.depth == depth
    ]
    return page(
        request,
        "board.html",
        title="超期预警",
        rows=rows,
        here=here,
        totals={k: sum(getattr(u, k) for u in counted if u.depth == depth) for k in _COUNTS},
    )


@router.get("/board/cases")
def board_cases(request: Request) -> Response:
    session = current(request)
    if session is None:
        return to_login(request)
    app = app_of(request)
    unit = _param(request, "unit")
    only = _param(request, "only")
    if unit is None:
        return error_page(request, 404, "没有指定网格单元。")
    here = app.grid.unit(unit, viewer=session.person)  # out of scope: UnknownUnit, a 404
    wanted = CaseFilter(
        unit=unit, open=True, overdue=True if only == "overdue" else None, limit=LIST_LIMIT
    )
    try:
        found = app.cases.list_cases(wanted, viewer=session.person)
    except UnknownUnit:
        return error_page(request, 404, "没有这个网格单元。")
    tz = app.settings.timezone
    return page(
        request,
        "board_cases.html",
        title="案件列表",
        here=here,
        only=only,
        cases=[
            {
                "id": c.id,
                "state": c.state_title,
                "opened": local_time(c.opened_at, tz),
                "address": str(c.data.get("address", "")),
            }
            for c in found
        ],
        limit=LIST_LIMIT,
    )
