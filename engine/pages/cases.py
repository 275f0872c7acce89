"""``/ui/cases/{id}``: a case as its viewer may see it, and a form per action they may take.

The page reads the case, its grid chain, history, timers, countersign parties,
transfers and supervision notices from the services, each with the signed-in
person as the viewer: a case outside their units' chains is the services'
UnknownCase, a 404 page.  The actions offered are the person's tasks on this case
(:meth:`~engine.duties.tasks.Tasks.for_actor` with ``case=``), so what the page
offers is what the API would accept; the services decide again when a form is
posted (:mod:`engine.pages.actions`).  When the case has a shape or its unit (or
the nearest unit above it) a boundary, a 位置 section draws them (:mod:`engine.pages.maps`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from markupsafe import Markup

from engine.assessment.overlaps import case_shapes
from engine.geo.shapes import GEOMETRY_TYPES
from engine.pages.forms import fields_of
from engine.pages.maps import CaseMark, UnitArea, svg_map
from engine.pages.render import local_time, page, span_left
from engine.pages.session import app_of, current, to_login
from engine.people import UiSession

if TYPE_CHECKING:
    from engine.app import App

__all__ = ["CaseId", "Refusal", "SubjectId", "case_page", "router"]

router = APIRouter()

CaseId = Annotated[str, Path(max_length=100)]
SubjectId = Annotated[int, Path(ge=1, le=2**31 - 1)]

PARTY_STATUS = {"pending": "待签", "signed": "已签", "refused": "拒签", "cancelled": "已取消"}
HOP_STATUS = {
    "pending": "待接收",
    "accepted": "已接收",
    "returned": "已退回",
    "cancelled": "已取消",
}
TRIGGER_TITLES = {
    "create": "登记案件",
    "ack": "签收",
    "assign": "指派",
    "sign": "会签同意",
    "refuse": "会签不同意",
    "countersign_done": "会签完成",
    "transfer": "移送",
    "transfer_accept": "接收移送",
    "transfer_return": "退回移送",
    "supervise": "督办",
    "supervise_reply": "督办回复",
}
LEVELS = {"district": "区", "town": "镇街", "village": "村（社区）", "group": "组"}


class Refusal:
    """What a refused form left: which form, its typed values, the reasons (by field,
    already as the page shows them) and a message above the form."""

    def __init__(
        self,
        form: str,
        typed: Mapping[str, str],
        problems: Mapping[str, str] | None = None,
        message: str = "",
    ) -> None:
        self.form = form
        self.typed = dict(typed)
        self.problems = dict(problems or {})
        self.message = message


def case_page(
    request: Request,
    case_id: str,
    session: UiSession,
    refusal: Refusal | None = None,
    status: int = 200,
) -> Response:
    app = app_of(request)
    viewer = session.person
    tz = app.settings.timezone
    view = app.cases.get_case(case_id, viewer=viewer)
    wf = app.catalog.workflow_of(view.definition_id)
    unit = app.grid.unit(view.unit, viewer=viewer)
    timing = app.timers.describe(case_id, viewer=viewer)
    assignment = app.assignments.describe(case_id, viewer=viewer)["assignment"]
    history = app.cases.history(case_id, viewer=viewer)
    parties = app.countersigns.parties(case_id, viewer=viewer)
    who = {h.actor for h in history} | {p.actor for p in parties if p.actor}
    if assignment and assignment.get("assignee"):
        who.add(assignment["assignee"])
    names = {**app.grid.names(who), "system": "系统"}
    hops = app.transfers.transfers(case_id, viewer=viewer)
    notices = app.supervision.supervisions(case_id, viewer=viewer)
    tasks = app.tasks.for_actor(viewer, case=case_id)

    def title_of_state(name: str | None) -> str:
        if name is None:
            return ""
        return wf.state(name).title or name if wf.has_state(name) else name

    titles = {t.trigger: t.label for t in wf.transitions}
    field_titles = {f.name: f.title or f.name for f in wf.fields}
    data = [
        {"title": field_titles.get(k, k), "value": _shown(v)}
        for k, v in view.data.items()
        if v not in (None, "", [])
    ]
    timeline = [
        {
            "at": local_time(h.at, tz),
            "who": names.get(h.actor, h.actor),
            "actor": h.actor,
            "what": titles.get(h.trigger) or TRIGGER_TITLES.get(h.trigger, h.trigger),
            "moved": h.from_state != h.to_state,
            "to": title_of_state(h.to_state),
            "notes": [
                {"title": field_titles.get(k, k), "value": _shown(v)}
                for k, v in h.payload.items()
                if v not in (None, "", []) and not isinstance(v, dict)
            ],
        }
        for h in reversed(history)
    ]
    now = app.clock.now()
    timers = [
        {
            "kind": {"deadline": "办理时限", "reminder": "催办", "escalation": "超时上报"}.get(
                t["kind"], t["kind"]
            ),
            "due": local_time(t["due"], tz),
        }
        for t in timing["timers"]
    ]
    forms = _forms(tasks, refusal)
    deadline = next((t for t in timing["timers"] if t["kind"] == "deadline"), None)
    left = None
    if deadline is not None:
        left = int((dt.datetime.fromisoformat(deadline["due"]) - now).total_seconds())
    return page(
        request,
        "case.html",
        status,
        title=f"案件 {view.id}",
        case=view,
        state_title=view.state_title,
        unit=unit,
        chain=[*reversed(unit["chain"]), unit],
        levels=LEVELS,
        data=data,
        timeline=timeline,
        timers=timers,
        deadline=local_time(deadline["due"], tz) if deadline else "",
        left=span_left(left),
        overdue=left is not None and left < 0,
        assignment=assignment,
        assignee=names.get(assignment["assignee"], assignment["assignee"])
        if assignment and assignment.get("assignee")
        else "",
        parties=[
            {
                **p.as_dict(),
                "status_title": PARTY_STATUS.get(p.status, p.status),
                "deadline_local": local_time(p.deadline, tz),
                "who": names.get(p.actor or "", p.actor),
            }
            for p in parties
        ],
        hops=[
            {
                **h,
                "status_title": HOP_STATUS.get(h["status"], h["status"]),
                "sent_local": local_time(h["sent_at"], tz),
                "deadline_local": local_time(h["deadline"], tz),
            }
            for h in hops
        ],
        notices=[
            {
                **n.as_dict(),
                "issued_local": local_time(n.issued_at, tz),
                "deadline_local": local_time(n.deadline_at, tz),
            }
            for n in notices
        ],
        forms=forms,
        place=_place(app, view.id, view.data, unit, viewer),
        refusal=refusal,
        done=request.query_params.get("done", ""),
        csrf=session.csrf,
    )


def _place(
    app: App, case_id: str, data: Mapping[str, Any], unit: dict[str, Any], viewer: str
) -> Markup | None:
    """The 位置 map: the case's shapes (its geometry fields and ``location``, as the
    findings are matched: :func:`~engine.assessment.overlaps.case_shapes`) over the
    boundary of its unit or, when that has none, of its nearest ancestor that has one
    (read with the grid service as *viewer*, who sees their chain); None when there
    is neither a shape nor a boundary."""
    marks = [CaseMark(case_id, shape) for shape in case_shapes(data)]
    holder = unit
    for ref in unit["chain"]:  # nearest first
        if holder.get("boundary") is not None:
            break
        holder = app.grid.unit(ref["code"], viewer=viewer)
    areas = []
    if holder.get("boundary") is not None:
        areas.append(UnitArea(holder["code"], holder["name"], holder["boundary"]))
    return svg_map(areas, marks, label=f"案件 {case_id} 的位置")


def _forms(tasks: list[Any], refusal: Refusal | None) -> list[dict[str, Any]]:
    """One form per action offered, in the tasks' order (ack first), none twice."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for task in tasks:
        for action in task.actions:
            kind = "act" if task.kind == "ack" and action["trigger"] != "ack" else task.kind
            key = f"{kind}:{action['trigger']}:{task.subject_id or ''}"
            if key in seen or action["trigger"] == "assign":
                continue
            seen.add(key)
            mine = refusal is not None and refusal.form == key
            typed = refusal.typed if mine and refusal is not None else {}
            problems = refusal.problems if mine and refusal is not None else {}
            out.append(
                {
                    "key": key,
                    "kind": kind,
                    "trigger": action["trigger"],
                    "title": action["title"],
                    "subject": task.subject_id,
                    "fields": fields_of(action.get("payload", []), typed, problems),
                    "note": typed.get("note", ""),
                    "message": refusal.message if mine and refusal is not None else "",
                }
            )
    return out


def _shown(value: Any) -> str:
    if isinstance(value, Mapping) and value.get("type") in GEOMETRY_TYPES:
        if value["type"] == "Point":  # a GeoJSON point: its position, readable as such
            lng, lat, *_ = value.get("coordinates") or [None, None]
            return f"{lng}, {lat}（见位置图）"
        return "见位置图"  # an outline's coordinates say nothing on a phone: the map shows it
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return str(value)


# -- the routes ----------------------------------------------------------------------


@router.get("/cases/{case_id}")
def show_case(case_id: CaseId, request: Request) -> Response:
    session = current(request)
    if session is None:
        return to_login(request)
    return case_page(request, case_id, session)
