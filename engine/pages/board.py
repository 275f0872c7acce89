"""``/ui/board`` (超期预警): open, due-soon and overdue cases per unit, drilling down.

Without ``?unit=`` the board lists the signed-in person's own outermost units; with
it, the children of that unit (which must be in their scope: else a 404 page).  Each
row links to its children and to the list of its open or overdue cases
(``/ui/board/cases?unit=…&only=overdue``), read with the case service's filters.
The counts come from the board service (:class:`~engine.cases.board.Board`, the same
as ``GET /board`` and ``gengbao board``): due soon is each state's reminder window.

Above the table, when the units listed have boundaries, a map (:mod:`engine.pages.maps`)
draws them coloured by their overdue count, with the open cases of the same scope that
have a shape (at most :data:`MAP_LIMIT`, saying so when there are more), each linking to
its page.  Units and cases are read with the signed-in person as the viewer, so the map
holds nothing the table would not.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from engine.assessment.overlaps import case_shapes
from engine.cases.board import BoardFilter
from engine.cases.records import CaseFilter
from engine.errors import UnknownUnit
from engine.pages.maps import CaseMark, UnitArea, svg_map
from engine.pages.render import error_page, local_time, page
from engine.pages.session import app_of, current, to_login

if TYPE_CHECKING:
    from engine.app import App

__all__ = ["band", "case_marks", "router"]

router = APIRouter()

LIST_LIMIT = 200
MAP_LIMIT = 500  # case marks on the board's map; more are left off, and the page says so
MAP_PAGES = 10  # pages of open cases (1000 each) read looking for shapes, at most
MANY_OVERDUE = 5  # a unit with this many overdue cases or more is drawn as "many"
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
    drawing, capped = _board_map(app, rows, unit, chosen, session.person)
    return page(
        request,
        "board.html",
        title="超期预警",
        rows=rows,
        drawing=drawing,
        capped=capped,
        map_limit=MAP_LIMIT,
        here=here,
        chosen=chosen,
        totals={k: sum(getattr(u, k) for u in counted if u.depth == depth) for k in _COUNTS},
    )


def band(overdue: int) -> str:
    """The CSS class of a unit on the map by its overdue count: none, some or many."""
    return "none" if overdue == 0 else ("some" if overdue < MANY_OVERDUE else "many")


def _board_map(
    app: App, rows: list[dict[str, Any]], unit: str | None, chosen: Choices, viewer: str
) -> tuple[Markup | None, bool]:
    """The map of the listed units that have a boundary and of the open cases with a
    shape in the same scope (*unit*'s subtree, or all the viewer sees) and filters;
    whether the cases were capped at :data:`MAP_LIMIT`.  No map when no listed unit
    has a boundary."""
    areas = []
    for row in rows:
        detail = app.grid.unit(row["code"], viewer=viewer)
        if detail.get("boundary") is None:
            continue
        target = f"/ui/board?{chosen.query(unit=row['code'])}" if row["children"] else None
        areas.append(
            UnitArea(row["code"], row["name"], detail["boundary"], band(row["overdue"]), target)
        )
    if not areas:
        return None, False
    late = set(_open_case_ids(app, unit, chosen, viewer, overdue=True))
    marks, capped = case_marks(_open_cases(app, unit, chosen, viewer), late)
    return svg_map(areas, marks, label="网格单元与在办案件", names=True), capped


def case_marks(
    found: Iterable[tuple[str, Mapping[str, Any]]], late: Container[str], limit: int = MAP_LIMIT
) -> tuple[list[CaseMark], bool]:
    """One mark per case of *found* (id, data) that has a shape — its biggest, so a spot
    is its outline rather than where it was checked — ``overdue`` for those in *late*;
    at most *limit*, and whether more were left off.  Cases without a shape are skipped
    (and read no further once the limit is passed)."""
    marks: list[CaseMark] = []
    for case_id, data in found:
        shapes = list(case_shapes(data))
        if not shapes:
            continue
        if len(marks) >= limit:
            return marks, True
        biggest = max(shapes, key=lambda shape: shape.area)
        marks.append(CaseMark(case_id, biggest, "overdue" if case_id in late else "open"))
    return marks, False


def _open_cases(
    app: App, unit: str | None, chosen: Choices, viewer: str, *, overdue: bool | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, data) of the open cases of *unit*'s subtree (None: the viewer's whole scope),
    in id order, page by page through the case service, at most :data:`MAP_PAGES` pages."""
    after: str | None = None
    for _ in range(MAP_PAGES):
        wanted = CaseFilter(
            unit=unit,
            workflow=chosen.workflow,
            state=chosen.state,
            open=True,
            overdue=overdue,
            limit=1000,
            after=after,
        )
        found = app.cases.list_cases(wanted, viewer=viewer)
        for case in found:
            yield case.id, case.data
        if len(found) < 1000:
            return
        after = found[-1].id


def _open_case_ids(
    app: App, unit: str | None, chosen: Choices, viewer: str, *, overdue: bool
) -> list[str]:
    return [case_id for case_id, _ in _open_cases(app, unit, chosen, viewer, overdue=overdue)]


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
