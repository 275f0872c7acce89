"""What the case service hands out and passes around: plain frozen records.

``CaseView`` (a case as callers see it), ``HistoryEntry`` (one history row),
``CaseFilter`` (what ``list_cases`` selects), ``Change`` (what one accepted
event did, given to the effects hooks) and ``HistoryRow`` (a history row and
its place in the hash chain, computed before it is written).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.cases.history import HASH_SCHEME, hashed_fields, row_hash
from engine.definitions import TransitionSpec, Workflow

__all__ = [
    "CaseFilter",
    "CaseView",
    "Change",
    "HistoryEntry",
    "HistoryRow",
    "jsonable",
    "view_from_dict",
]


@dataclass(frozen=True, kw_only=True)
class CaseView:
    id: str
    workflow: str
    version: int
    definition_id: int
    state: str
    state_title: str
    unit: str
    data: dict[str, Any]
    revision: int
    escalation_level: int
    opened_at: datetime
    state_entered_at: datetime
    closed_at: datetime | None
    updated_at: datetime
    created_by: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        return self.closed_at is None

    def as_dict(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "workflow": self.workflow,
            "version": self.version,
            "definition_id": self.definition_id,
            "state": self.state,
            "state_title": self.state_title,
            "unit": self.unit,
            "data": self.data,
            "revision": self.revision,
            "escalation_level": self.escalation_level,
            "open": self.open,
            "opened_at": self.opened_at.isoformat(),
            "state_entered_at": self.state_entered_at.isoformat(),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "updated_at": self.updated_at.isoformat(),
            "created_by": self.created_by,
        }
        out.update(self.extra)
        return out


@dataclass(frozen=True, kw_only=True)
class HistoryEntry:
    seq: int
    at: datetime
    actor: str
    trigger: str
    from_state: str | None
    to_state: str
    payload: dict[str, Any]
    definition_id: int
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "trigger": self.trigger,
            "from": self.from_state,
            "to": self.to_state,
            "payload": self.payload,
            "definition_id": self.definition_id,
            "hash": self.hash,
        }


@dataclass(frozen=True, kw_only=True)
class CaseFilter:
    workflow: str | None = None
    state: str | None = None
    unit: str | None = None  # the unit and everything below it
    open: bool | None = None
    limit: int = 100
    after: str | None = None  # cursor: list cases with id > after
    overdue: bool | None = None  # open with its current deadline passed (or not)
    within: tuple[str, ...] | None = None  # only these units' subtrees (None: everywhere)


@dataclass(frozen=True, kw_only=True)
class Change:
    """What one accepted event did, handed to the effects inside its transaction."""

    case_id: str
    workflow: Workflow
    definition_id: int
    unit: str
    actor: str
    trigger: str
    transition: TransitionSpec | None  # None for case creation
    from_state: str | None
    to_state: str
    data: dict[str, Any]
    payload: dict[str, Any]
    at: datetime
    seq: int
    # Columns of the case row that effects decide (the timers: ``deadline_at``); the
    # case service writes them with the case's own update, after the effects ran.
    case_values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class HistoryRow:
    """One history row and its place in the hash chain, computed before it is written."""

    values: dict[str, Any]
    prev: str
    hash: str

    @classmethod
    def of(cls, change: Change, prev: str) -> HistoryRow:
        values = {
            "case_id": change.case_id,
            "seq": change.seq,
            "at": change.at,
            "actor": change.actor,
            "trigger": change.trigger,
            "from_state": change.from_state,
            "to_state": change.to_state,
            "payload": jsonable(change.payload),
            "definition_id": change.definition_id,
            "hash_scheme": HASH_SCHEME,
        }
        digest = row_hash(prev, hashed_fields(values), HASH_SCHEME)
        return cls(values=values, prev=prev, hash=digest)


def jsonable(value: Any) -> Any:
    """*value* as ``json.loads(json.dumps(value, default=str))`` gives it back, without
    writing the text: plain dicts, lists and scalars are copied (tuples become lists);
    anything else (a datetime, a non-text key, a dict subclass) takes the round trip."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict:
        copy = {}
        for key, item in value.items():
            if type(key) is not str:
                return _round_trip(value)
            copy[key] = jsonable(item)
        return copy
    if kind is list or kind is tuple:
        return [jsonable(item) for item in value]
    return _round_trip(value)


def _round_trip(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def view_from_dict(d: Mapping[str, Any]) -> CaseView:
    known = {
        "id",
        "workflow",
        "version",
        "state",
        "state_title",
        "unit",
        "data",
        "revision",
        "escalation_level",
        "open",
        "opened_at",
        "state_entered_at",
        "closed_at",
        "updated_at",
        "created_by",
        "definition_id",
    }

    def moment(text: str | None) -> datetime | None:
        return datetime.fromisoformat(text) if text else None

    opened = moment(d["opened_at"])
    entered = moment(d["state_entered_at"])
    updated = moment(d["updated_at"])
    assert opened and entered and updated
    return CaseView(
        id=d["id"],
        workflow=d["workflow"],
        version=d["version"],
        definition_id=d.get("definition_id", 0),
        state=d["state"],
        state_title=d["state_title"],
        unit=d["unit"],
        data=d["data"],
        revision=d["revision"],
        escalation_level=d["escalation_level"],
        opened_at=opened,
        state_entered_at=entered,
        closed_at=moment(d["closed_at"]),
        updated_at=updated,
        created_by=d["created_by"],
        extra={k: v for k, v in d.items() if k not in known},
    )
