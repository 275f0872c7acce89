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
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    model_validator,
)

__all__ = [
    "MAX_BATCH",
    "MAX_DEPTH",
    "Case",
    "CaseBatch",
    "CaseBatchItem",
    "CaseBatchResult",
    "CaseCreate",
    "CaseDetail",
    "CasePage",
    "Delivery",
    "DeliveryPage",
    "ErrorBody",
    "EventSubmit",
    "HistoryEntry",
    "Patrol",
    "PatrolCreate",
    "PatrolPage",
    "Unit",
    "WorkflowDetail",
    "WorkflowSummary",
]

MAX_DEPTH = 16
MAX_BATCH = 1000  # items in one POST /cases/batch
MAX_NAME = 200
MAX_TEXT = 2000
MAX_REFERENCE = 1000


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


def _clean_list(value: list[Any]) -> list[Any]:
    _clean_value(value, "")
    return value


Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME), AfterValidator(_clean_name)]
JSONObject = Annotated[dict[str, Any], AfterValidator(_clean_object)]
JSONList = Annotated[list[Any], AfterValidator(_clean_list)]
Text = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(_clean_name)]
Reference = Annotated[
    str, Field(min_length=1, max_length=MAX_REFERENCE), AfterValidator(_clean_name)
]
Coordinate = Annotated[float, Field(allow_inf_nan=False)]


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


class CaseBatchItem(_Request):
    """One case of a batch: its unit, its data and, optionally, its own idempotency key."""

    unit: Name = Field(examples=["ddk-bq-xh-1"])
    data: JSONObject = Field(default_factory=dict, description="the case fields")
    key: Name | None = Field(
        default=None,
        description="an idempotency key of this item: the same key and item (from this "
        "actor) replays the first answer, as `Idempotency-Key` does for POST /cases",
    )


class CaseBatch(_Request):
    """Open many cases of *workflow* at once (at most :data:`MAX_BATCH`)."""

    workflow: Name = Field(examples=["farmland_violation"])
    items: list[CaseBatchItem] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"1 to {MAX_BATCH} cases"
    )
    skip_invalid: bool = Field(
        default=False,
        description="false (default): one bad item and nothing is written (422 "
        "import_refused); true: the good items are written, the bad ones answered with "
        "their problems",
    )


DEPRECATED_REVISION_KEYS = ("expected_version", "expected_revision", "row_version")
"""Old names of ``EventSubmit.revision``, still accepted for one release."""


class EventSubmit(_Request):
    """Fire *trigger* on a case."""

    trigger: Name = Field(examples=["stop"])
    payload: JSONObject | None = Field(
        default=None, description="the transition's payload; case fields of the same name update"
    )
    revision: int | None = Field(
        default=None,
        description="refuse (409) unless the case is at this revision (its `revision`); "
        f"deprecated old names, accepted for one release: {', '.join(DEPRECATED_REVISION_KEYS)}",
    )
    _deprecated_key: str | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _old_revision_names(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        """Read a deprecated name of ``revision`` as ``revision`` (one name at most)."""
        used = [k for k in DEPRECATED_REVISION_KEYS if isinstance(data, dict) and k in data]
        if used:
            given = [k for k in ("revision", *DEPRECATED_REVISION_KEYS) if k in data]
            if len(given) > 1:
                raise ValueError(f"give the revision once, as 'revision' (got {', '.join(given)})")
            data = {("revision" if k == used[0] else k): v for k, v in data.items()}
        model = handler(data)
        if used:
            model._deprecated_key = used[0]
        return model

    @property
    def deprecated_key(self) -> str | None:
        """The deprecated name the request gave the revision under, if it did."""
        return self._deprecated_key


class PatrolCreate(_Request):
    """Record a patrol (巡查) of grid unit *unit*; the patroller is the token's actor."""

    unit: Name = Field(examples=["ddk-bq-xh"])
    started: datetime | None = Field(
        default=None,
        description="ISO 8601; without an offset, the server's time zone; default: now",
        examples=["2026-09-18T09:00:00+08:00"],
    )
    ended: datetime | None = Field(
        default=None,
        description="ISO 8601; without an offset, the server's time zone",
        examples=["2026-09-18T11:30:00+08:00"],
    )
    findings: Text | None = Field(
        default=None, description="what was found (free text)", examples=["三组王家湾有新开挖痕迹"]
    )
    suspected: JSONList = Field(
        default_factory=list,
        description="suspected violations, a list of anything (objects, texts)",
        examples=[[{"address": "三组王家湾", "note": "疑似挖塘"}]],
    )
    route: list[Annotated[list[Coordinate], Field(min_length=2, max_length=2)]] | None = Field(
        default=None,
        description="the route walked: `[lng, lat]` points in degrees",
        examples=[[[106.48, 29.48], [106.49, 29.48]]],
    )
    area_m2: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = Field(
        default=None, description="area covered, m²", examples=[120000]
    )
    attachments: list[Reference] = Field(
        default_factory=list,
        description="references to photos and files: file names or URLs",
        examples=[["IMG_0001.jpg"]],
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


_RUNG = "index in the state's `escalate` list, from 0; null for a timer that is no rung"
_LEVEL = "the escalation level the rung raises the case to (rung + 1), as the CLI prints it"


class PendingTimer(_Response):
    kind: str
    rung: int | None = Field(description=_RUNG)
    level: int | None = Field(description=_LEVEL)
    due: str


class OverdueFact(_Response):
    state: str
    deadline: str
    rung: int | None
    level: int
    at: str


class FailedTimer(_Response):
    id: int
    kind: str
    rung: int | None = Field(description=_RUNG)
    level: int | None = Field(description=_LEVEL)
    due: str
    attempts: int
    last_error: str
    next_attempt_at: str | None = Field(description="null: no more automatic attempts")


class CaseDetail(Case):
    timers: list[PendingTimer]
    failed_timers: list[FailedTimer]
    overdue: list[OverdueFact]
    assignment: dict[str, Any] | None = Field(
        default=None,
        description="签收: the current state visit's assignee and acknowledgement (null: the "
        "state asks for none and nobody was assigned)",
    )


class CaseBatchOutcome(_Response):
    line: int = Field(description="the item's position in `items`, from 1")
    id: str | None = Field(description="the case opened (or replayed by its key); null: refused")
    replayed: bool | None = None
    error: str | None = Field(default=None, description="the first problem's code")
    problems: list[dict[str, Any]] | None = Field(
        default=None, description="every problem of the item: line, field, code, message"
    )


class CaseBatchResult(_Response):
    workflow: str
    refused: bool
    written: int
    replayed: int
    skipped: int
    items: list[CaseBatchOutcome] = Field(description="one per item, in order")


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
    current: bool = Field(description="new cases get this version")
    activated_at: list[str] = Field(description="every time it became current, oldest first")


class WorkflowSummary(_Response):
    workflow: str
    title: str
    latest_version: int = Field(description="the highest version number")
    current_version: int = Field(description="the version new cases get (its newest activation)")
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
    boundary: dict[str, Any] | None = Field(
        default=None, description="GeoJSON Polygon or MultiPolygon (lng/lat), when known"
    )
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
    notification: int = Field(description="the notification this delivery sends (for ack)")
    read_at: str | None = Field(
        description="when the delivery's person acknowledged the notification; null: not yet"
    )


class DeliveryPage(_Response):
    items: list[Delivery]
    next_cursor: int | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )


class PatrolCredit(_Response):
    rule: str
    unit: str
    period: str


class Patrol(_Response):
    id: str = Field(examples=["P20260918-0001"])
    unit: str
    unit_name: str
    actor: str = Field(description="the patroller")
    actor_name: str
    started_at: str
    ended_at: str | None
    route: list[list[float]] | None
    area_m2: float | None
    findings: str | None
    suspected: list[Any]
    attachments: list[str]
    recorded_at: str
    cases: list[str] = Field(description="the cases opened from (or linked to) this patrol")
    credited: list[PatrolCredit] = Field(
        description="the obligation periods this patrol counted for (in the answer to POST only)"
    )


class PatrolPage(_Response):
    items: list[Patrol]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )


# -- transfers (移送/转办): engine/api/routes/transfers.py ---------------------------
class TransferSend(_Request):
    """Send a case to a unit (a code of a level its state declares) or a department."""

    to: Name = Field(description="a unit code, or LEVEL.ROLE", examples=["ddk-js"])
    reason: Text = Field(description="why it goes there (required)", examples=["不属本镇管辖"])


class TransferAccept(_Request):
    note: Text | None = Field(default=None, description="the receiver's note (optional)")


class TransferReturn(_Request):
    reason: Text = Field(description="why it goes back (required)", examples=["不属本单位职责"])


class TransferHop(_Response):
    id: int
    state: str
    from_unit: str
    to_unit: str
    to_role: str | None = Field(description="a department transfer: the receiving LEVEL.ROLE")
    reason: str
    status: str = Field(description="pending | accepted | returned | cancelled")
    sent_by: str
    sent_at: str
    deadline: str | None
    answered_by: str | None
    answered_at: str | None
    answer_note: str | None
    late: bool = Field(description="answered after its deadline, or still pending past it")
