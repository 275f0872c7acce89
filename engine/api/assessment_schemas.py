"""Answer of ``GET /assessment`` (routes/assessment.py); the rows are built by
:meth:`engine.assessment.report.UnitRow.as_dict`, documented here by their main keys."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AssessmentReport", "AssessmentRow"]


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


class AssessmentRow(_Response):
    unit: str
    name: str
    level: str
    cases: int = Field(description="cases opened in the period, in the unit and below")
    overdue: int = Field(description="overdue facts (a deadline passed) in the period")
    overdue_by_state: dict[str, int]
    escalations: int
    patrols_done: int
    patrols_required: int
    patrols_counted: int
    patrol_rate: float | None = Field(description="巡田率: counted / required")
    missed_patrols: int
    findings: int
    missed: int
    supervisions: int
    score: float
    components: dict[str, dict[str, Any]] = Field(
        description="each score component: its value, weight and points"
    )


class AssessmentReport(_Response):
    date_from: str = Field(alias="from", description="first local day of the period")
    date_to: str = Field(alias="to", description="last local day of the period")
    unit: str | None
    level: str | None
    rows: list[AssessmentRow] = Field(description="the units the caller sees, in grid order")
