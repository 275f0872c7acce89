"""``/ui/board`` (超期预警): open, due-soon and overdue cases per unit, drilling down.

Without ``?unit=`` the board lists the signed-in person's own outermost units; with
it, the children of that unit (which must be in their scope: else a 404 page).  Each
row links to its children and to the list of its open or overdue cases
(``/ui/board/cases?unit=…&only=overdue``), read with the case service's filters.
The counts come from the board service (:class:`~engine.cases.board.Board`, the same
as ``GET /board`` and ``gengbao board``): due soon is each state's reminder window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

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


@dataclass
class Choices:
    """The board's filters: the workflow and state chosen (``?workflow=&state=``), the
    choices each select offers, and what was wrong with a value given."""

    workflow: str | None
    state: str | None
    workflows: list[dict[str, str]] = field(default_factory=list)
    states: list[dict[str, str]] = field(default_factory=list)
    problem: str = ""

    def query(self, **more: str | None) -> str:
        """The query string of a link that keeps these filters (and adds *more*)."""
        given = {"workflow": self.workflow, "state": self.state, **more}
        return urlencode({k: v for k, v in given.items() if v})


def _choices(request: Request) -> Choices:
    """The registered workflows (by title) and the states a case can be open in: the
    chosen workflow's, or every workflow's when none is chosen."""
    catalog = app_of(request).catalog
    chosen = Choices(_param(request, "workflow"), _param(request, "state"))
    names = sorted({v.workflow for v in catalog.versions()})
    compiled = {name: catalog.compiled_latest(name).workflow for name in names}
    chosen.workflows = [{"name": n, "title": compiled[n].title or n} for n in names]
    if chosen.workflow is not None and chosen.workflow not in compiled:
        chosen.problem = f"没有这个流程：{chosen.workflow}"
        return chosen
    states: dict[str, str] = {}
    for name in [chosen.workflow] if chosen.workflow else names:
        for state in compiled[name].states:
            if not state.final:
                states.setdefault(state.name, state.title or state.name)
    chosen.states = [{"name": k, "title": v} for k, v in states.items()]
    if chosen.state is not None and chosen.state not in states:
        chosen.problem = f"没有这个状态：{chosen.state}"
    return chosen


@router.get("/board")
def board(request: Request) -> Response:
    session = current(request)
    if session is None:
        return to_login(request)
    app = app_of(request)
    unit = _param(request, "unit")
    here = app.grid.unit(unit, viewer=session.person) if unit else None  # else a 404
    chosen = _choices(request)
    if chosen.problem:
        return error_page(request, 422, chosen.problem)
    wanted = BoardFilter(unit=unit, workflow=chosen.workflow, state=chosen.state)
    counted = app.board.board(wanted, viewer=session.person).units
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
        chosen=chosen,
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
    chosen = _choices(request)
    if chosen.problem:
        return error_page(request, 422, chosen.problem)
    wanted = CaseFilter(
        unit=unit,
        workflow=chosen.workflow,
        state=chosen.state,
        open=True,
        overdue=True if only == "overdue" else None,
        limit=LIST_LIMIT,
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
        chosen=chosen,
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
