"""Request and response bodies, as Pydantic models (they are also the OpenAPI schema).

Requests are validated here before the engine sees them: unknown keys are
refused, and every string anywhere in a body must be valid Unicode without NUL
characters, every number finite, nesting at most :data:`MAX_DEPTH` deep —
what the databases can store.  Responses are built by the engine's ``as_dict``
methods and returned as they are; the models below document them (and the
property-based API test checks that the two agree).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = [
    "MAX_DEPTH",
    "Case",
    "CaseCreate",
    "CaseDetail",
    "CasePage",
    "Delivery",
    "ErrorBody",
    "EventSubmit",
    "HistoryEntry",
    "Unit",
    "WorkflowDetail",
    "WorkflowSummary",
]

MAX_DEPTH = 16
MAX_NAME = 200


def _check_text(value: str, where: str) -> None:
    if "\x00" in value:
        raise ValueError(f"{where}holds a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{where}is not valid Unicode (a lone surrogate)") from None


def _clean_value(value: Any, path: str, depth: int = 0) -> None:
    where = f"{path}: " if path else ""
    if depth > MAX_DEPTH:
        raise ValueError(f"{where}nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        _check_text(value, where)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}numbers must be finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(str(key), where)
            _clean_value(item, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _clean_value(item, f"{path}[{i}]", depth + 1)


def _clean_object(value: dict[str, Any]) -> dict[str, Any]:
    _clean_value(value, "")
    return value


def _clean_name(value: str) -> str:
    _check_text(value, "")
    return value


Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME), AfterValidator(_clean_name)]
JSONObject = Annotated[dict[str, Any], AfterValidator(_clean_object)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseCreate(_Request):
    """Open a case of *workflow* on grid unit *unit*."""

    workflow: Name = Field(examples=["farmland_violation"])
    unit: Name = Field(examples=["ddk-bq-xh-1"])
    data: JSONObject = Field(
        default_factory=dict,
        description="the case fields of the workflow (address, land_type, ...)",
        examples=[
            {"address": "新华村一组 12 号旁", "land_type": "永久基本农田", "source": "村级巡查"}
        ],
    )


class EventSubmit(_Request):
    """Fire *trigger* on a case."""

    trigger: Name = Field(examples=["stop"])
    payload: JSONObject | None = Field(
        default=None, description="the transition's payload; case fields of the same name update"
    )
    expected_version: int | None = Field(
        default=None,
        description="refuse (409) unless the case is at this revision (its `revision`)",
    )


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(_Response):
    error: str = Field(description="a stable code: unknown_case, trigger_not_allowed, ...")
    message: str
    details: dict[str, Any]


class Case(_Response):
    id: str
    workflow: str
    version: int = Field(description="the version of the workflow definition the case runs on")
    definition_id: int
    state: str
    state_title: str
    unit: str
    data: dict[str, Any]
    revision: int = Field(description="increases by one with every accepted event")
    escalation_level: int
    open: bool
    opened_at: str
    state_entered_at: str
    closed_at: str | None
    updated_at: str
    created_by: str


class PendingTimer(_Response):
    kind: str
    rung: int | None
    due: str


class OverdueFact(_Response):
    state: str
    deadline: str
    rung: int | None
    level: int
    at: str


class CaseDetail(Case):
    timers: list[PendingTimer]
    overdue: list[OverdueFact]


class CasePage(_Response):
    items: list[Case]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )


class HistoryEntry(_Response):
    seq: int
    at: str
    actor: str
    trigger: str
    from_: str | None = Field(alias="from")
    to: str
    payload: dict[str, Any]
    definition_id: int
    hash: str


class WorkflowVersion(_Response):
    workflow: str
    version: int
    definition_id: int
    title: str
    content_hash: str
    loaded_at: str
    open_cases: int
    cases: int


class WorkflowSummary(_Response):
    workflow: str
    title: str
    latest_version: int
    versions: list[WorkflowVersion]


class WorkflowDetail(_Response):
    workflow: str
    title: str
    version: int
    versions: list[WorkflowVersion]
    definition: dict[str, Any]
    source: str
    diagram: dict[str, str] = Field(description="`mermaid`: a Mermaid stateDiagram-v2")


class UnitRef(_Response):
    code: str
    name: str
    level: str


class RoleHolder(_Response):
    person: str
    name: str
    kind: str
    role: str


class Unit(_Response):
    code: str
    name: str
    level: str
    parent: str | None
    path: str
    active: bool
    chain: list[UnitRef]
    children: list[UnitRef]
    roles: list[RoleHolder]


class Delivery(_Response):
    id: int
    status: str
    channel: str
    address: str
    person: str | None
    attempts: int
    next_attempt_at: str
    last_error: str | None
    sent_at: str | None
    case: str | None
    kind: str
    template: str
