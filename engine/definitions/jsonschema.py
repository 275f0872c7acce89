"""A JSON Schema (draft 2020-12) of the workflow format, for editors.

Built from the same key lists the loader enforces, so the two cannot drift.
The validator is the authority: the schema catches shape mistakes as you type,
``gengbao validate`` catches everything else.
"""

from __future__ import annotations

from typing import Any

from engine.definitions.loader import KEYS, REQUIRED
from engine.definitions.model import DEFAULT_MAX_LENGTH, FIELD_TYPES, LEVELS

__all__ = ["workflow_schema"]

_ID = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}
_DURATION = {
    "type": "string",
    "pattern": r"^\s*(\d+\s*(m|min|h|d)|\d+\s*(working\s+days?|个?工作日))\s*$",
    "description": "30m, 2h, 3d (3 × 24 h) or '3 working days'",
}
_ROLE = {
    "type": "string",
    "pattern": rf"^(system|({'|'.join(LEVELS)})\.[a-z][a-z0-9_]*)$",
    "description": "LEVEL.ROLE, e.g. town.leader",
}


def _object(kind: str, properties: dict[str, Any]) -> dict[str, Any]:
    assert set(properties) == set(KEYS[kind]), kind
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(REQUIRED.get(kind, ())),
        "properties": properties,
    }


def _one_or_many(item: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [item, {"type": "array", "items": item}]}


def workflow_schema() -> dict[str, Any]:
    field = _object(
        "field",
        {
            "type": {"enum": list(FIELD_TYPES)},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "required": {"type": "boolean"},
            "default": {},
            "values": {"type": "array", "minItems": 1},
            "min": {"type": "number"},
            "max": {"type": "number"},
            "items": {"enum": [t for t in FIELD_TYPES if t not in ("list", "enum")]},
            "max_length": {
                "type": "integer",
                "minimum": 1,
                "description": "string/text: at most this many characters "
                f"(default {DEFAULT_MAX_LENGTH})",
            },
        },
    )
    fields = {
        "type": "object",
        "propertyNames": _ID,
        "additionalProperties": {"$ref": "#/$defs/field"},
    }
    rung = _object(
        "rung",
        {
            "after": _DURATION,
            "notify": _one_or_many(_ROLE),
            "template": _ID,
            "trigger": _ID,
        },
    )
    deadline = _object(
        "deadline",
        {
            "within": _DURATION,
            "from": _ID,
            "until": _ID,
            "remind": {
                "oneOf": [
                    {"type": "array", "items": _DURATION},
                    _object("remind_every", {"every": _DURATION}),
                ]
            },
            "escalate": {"type": "array", "items": {"$ref": "#/$defs/rung"}},
        },
    )
    state = _object(
        "state",
        {
            "title": {"type": "string"},
            "description": {"type": "string"},
            "final": {"type": "boolean"},
            "deadline": {"$ref": "#/$defs/deadline"},
            "ack": {
                "$ref": "#/$defs/deadline",
                "description": "签收: one of the state's actors acknowledges within this",
            },
            "countersign": {"$ref": "#/$defs/countersign"},
            "transfer": {"$ref": "#/$defs/transfer"},
        },
    )
    party = _object(
        "party",
        {"role": _ROLE, "title": {"type": "string"}, "deadline": {"$ref": "#/$defs/deadline"}},
    )
    countersign = _object(
        "countersign",
        {
            "need": {"oneOf": [{"const": "all"}, {"type": "integer", "minimum": 1}]},
            "parties": {
                "type": "array",
                "minItems": 1,
                "items": {"oneOf": [_ROLE, {"$ref": "#/$defs/party"}]},
            },
            "deadline": {"$ref": "#/$defs/deadline"},
            "then": _ID,
            "refused": _ID,
        },
    )
    transfer = _object(
        "transfer",
        {
            "to": _one_or_many(
                {"type": "string", "description": "a unit level, or LEVEL.ROLE (a department)"}
            ),
            "roles": _one_or_many(_ROLE),
            "accept_roles": _one_or_many({"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"}),
            "deadline": {"$ref": "#/$defs/deadline"},
        },
    )
    transition = _object(
        "transition",
        {
            "trigger": _ID,
            "from": _one_or_many(_ID),
            "to": _ID,
            "title": {"type": "string"},
            "description": {"type": "string"},
            "roles": _one_or_many(_ROLE),
            "requires": _one_or_many(_ID),
            "payload": {"$ref": "#/$defs/fields"},
            "when": {"type": "string", "description": "guard over case fields and payload"},
            "notify": _one_or_many(_ROLE),
            "template": _ID,
            "urgent": {
                "type": "boolean",
                "description": "its notification is sent before any other (第一时间)",
            },
        },
    )
    top = _object(
        "workflow",
        {
            "workflow": _ID,
            "title": {"type": "string"},
            "description": {"type": "string"},
            "initial": _ID,
            "timezone": {"type": "string"},
            "reminders": _object(
                "reminders",
                {
                    "office_hours": {
                        "type": "string",
                        "pattern": r"^\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}\s*$",
                        "description": "local HH:MM-HH:MM; reminders outside wait for the start",
                    }
                },
            ),
            "roles": _one_or_many(_ROLE),
            "fields": {"$ref": "#/$defs/fields"},
            "states": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": _ID,
                "additionalProperties": {"oneOf": [{"$ref": "#/$defs/state"}, {"type": "null"}]},
            },
            "transitions": {"type": "array", "items": {"$ref": "#/$defs/transition"}},
            "assigners": {
                "type": "array",
                "items": _ROLE,
                "minItems": 1,
                "description": "who may assign a case (default: every LEVEL.leader)",
            },
            "supervision": _object(
                "supervision",
                {
                    "roles": _one_or_many(_ROLE),
                    "notify": _one_or_many(_ROLE),
                    "deadline": {"$ref": "#/$defs/deadline"},
                },
            ),
        },
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://gengbao.example/schema/workflow.json",
        "title": "gengbao workflow definition",
        **top,
        "$defs": {
            "field": field,
            "fields": fields,
            "rung": rung,
            "deadline": deadline,
            "state": state,
            "countersign": countersign,
            "party": party,
            "transfer": transfer,
            "transition": transition,
        },
    }
