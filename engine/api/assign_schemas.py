"""Bodies and answers of 签收, 指派, my tasks and notification reads (routes/assign.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.api.schemas import Case, Name

__all__ = ["AssignBody", "Assignment", "CaseAssigned", "NotificationRead", "Task", "TaskPage"]


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Name = Field(description="the new assignee (a person id)")


class Assignment(_Response):
    id: int | None = Field(description="its case_assignments row; null: offered, nobody yet")
    state: str
    status: str = Field(description="offered | acked | assigned")
    assignee: str | None
    assigned_by: str | None
    offered_at: str
    deadline_at: str | None = Field(description="acknowledge by (the state's `ack: within`)")
    acked_at: str | None


class CaseAssigned(Case):
    assignment: Assignment | None


class TaskUnit(_Response):
    code: str
    name: str


class Task(_Response):
    case: str
    workflow: str
    unit: TaskUnit
    state: str
    state_title: str
    kind: str = Field(description="act | ack | sign | transfer | supervision")
    actions: list[dict[str, Any]] = Field(
        description="what the person can do: trigger, title, payload fields (name, type, "
        "title, required, values)"
    )
    deadline_at: str | None
    deadline_local: str | None = Field(description="the deadline in the workflow's time zone")
    seconds_left: int | None = Field(description="negative: overdue by that much")
    overdue: bool
    assignee: str | None
    acked_at: str | None
    subject_id: int | None = Field(description="the countersign party, transfer or supervision")


class TaskPage(_Response):
    items: list[Task]


class NotificationRead(_Response):
    notification: int
    case: str | None
    person: str
    acked_at: str = Field(description="the first acknowledgement's time")
    first: bool = Field(description="false: it had been acknowledged before")
