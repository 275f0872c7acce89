"""``/ui/tasks`` (我的待办): the signed-in person's tasks, most urgent first.

The list is the tasks service's (:class:`~engine.duties.tasks.Tasks`, the same as
``GET /tasks``), each shown with its case, unit, state, deadline in local time and
the time left, coloured: red past the deadline, yellow inside the reminder window
before it, green otherwise.  Cases waiting for a 签收 are marked.  The page reloads
itself every minute (``<meta http-equiv="refresh">``: no script needed).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from engine.duties.tasks import Task
from engine.pages.render import local_time, page, span_left
from engine.pages.session import app_of, current, to_login

__all__ = ["REFRESH_SECONDS", "TaskRow", "router"]

router = APIRouter()

REFRESH_SECONDS = 60
KIND_TITLES = {
    "act": "待办理",
    "ack": "待签收",
    "sign": "待会签",
    "transfer": "移送待接收",
    "supervision": "督办待回复",
}


@dataclass(frozen=True, kw_only=True)
class TaskRow:
    task: Task
    deadline: str
    left: str
    urgency: str  # overdue | soon | ok | none

    @property
    def kind_title(self) -> str:
        return KIND_TITLES.get(self.task.kind, self.task.kind)


def urgency_of(task: Task) -> str:
    if task.seconds_left is None:
        return "none"
    if task.overdue:
        return "overdue"
    return "soon" if task.due_soon else "ok"


@router.get("/tasks")
def my_tasks(request: Request) -> Response:
    session = current(request)
    if session is None:
        return to_login(request)
    app = app_of(request)
    tz = app.settings.timezone
    rows = [
        TaskRow(
            task=t,
            deadline=local_time(t.deadline_at, tz),
            left=span_left(t.seconds_left),
            urgency=urgency_of(t),
        )
        for t in app.tasks.for_actor(session.person)
    ]
    counts = {u: sum(1 for r in rows if r.urgency == u) for u in ("overdue", "soon")}
    return page(
        request,
        "tasks.html",
        title="我的待办",
        rows=rows,
        counts=counts,
        refresh=REFRESH_SECONDS,
        now=local_time(app.clock.now(), tz),
    )
