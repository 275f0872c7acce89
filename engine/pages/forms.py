"""Forms from the workflow's declared payload fields, and typed values back from them.

The tasks service lists, per action, the payload fields the workflow declares
(``name``, ``type``, ``title``, ``required``, ``values``); :func:`fields_of` turns
them into form fields (a ``<select>`` for an enum, a date input for a date, a
checkbox for a boolean, one line per item for a list), each with the text typed
into it, so a refused form comes back as it was sent.  :func:`parse` reads the
posted text into the values the case service takes; what it cannot read, and what
the service refuses (:class:`~engine.errors.InvalidData`), become messages next to
the field, in Chinese (:func:`message_of`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Request

__all__ = ["FIELD_PREFIX", "FormDep", "FormField", "fields_of", "message_of", "parse"]

FIELD_PREFIX = "f_"  # a payload field's input name: f_stop_note


async def _form(request: Request) -> dict[str, str]:
    """The posted form's text values (the last one of a repeated name)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


FormDep = Annotated[dict[str, str], Depends(_form)]

_INPUTS = {
    "string": "text",
    "text": "textarea",
    "number": "number",
    "integer": "number",
    "boolean": "checkbox",
    "enum": "select",
    "date": "date",
    "datetime": "datetime-local",
    "list": "textarea",
    "point": "text",
    "geometry": "textarea",
}
_HINTS = {
    "list": "每行一项",
    "point": "经度,纬度（如 106.48,29.48）",
    "geometry": "GeoJSON",
}


@dataclass(frozen=True, kw_only=True)
class FormField:
    name: str
    type: str
    title: str
    required: bool
    values: tuple[str, ...] = ()
    value: str = ""  # as typed (a checkbox: "on" or "")
    error: str = ""

    @property
    def input_name(self) -> str:
        return FIELD_PREFIX + self.name

    @property
    def input(self) -> str:
        return _INPUTS.get(self.type, "text")

    @property
    def hint(self) -> str:
        return _HINTS.get(self.type, "")

    @property
    def step(self) -> str:
        return "1" if self.type == "integer" else "any"


def fields_of(
    payload: Sequence[Mapping[str, Any]],
    typed: Mapping[str, str] | None = None,
    problems: Mapping[str, str] | None = None,
) -> list[FormField]:
    """Form fields of an action's *payload* list, holding what was *typed* and the
    *problems* found, by field name."""
    typed = typed or {}
    problems = problems or {}
    return [
        FormField(
            name=p["name"],
            type=p["type"],
            title=p.get("title") or p["name"],
            required=bool(p.get("required")),
            values=tuple(str(v) for v in p.get("values", ())),
            value=typed.get(FIELD_PREFIX + p["name"], ""),
            error=problems.get(p["name"], ""),
        )
        for p in payload
    ]


def parse(
    fields: Sequence[FormField], form: Mapping[str, str], timezone: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """(payload, problems by field name) from the posted *form*; an empty optional
    field is left out, an unchecked checkbox is false."""
    payload: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for f in fields:
        raw = form.get(f.input_name, "")
        if f.type == "boolean":
            payload[f.name] = raw in ("on", "true", "1")
            continue
        text = raw.strip()
        if not text:
            continue  # the service says whether it was required
        try:
            payload[f.name] = _value(f, text, timezone)
        except ValueError as exc:
            problems[f.name] = str(exc)
    return payload, problems


def _value(f: FormField, text: str, timezone: str) -> Any:
    if f.type in ("number", "integer"):
        try:
            number = float(text)
        except ValueError:
            raise ValueError("请填写数字") from None
        if not math.isfinite(number):
            raise ValueError("请填写数字")
        if f.type == "integer":
            if not number.is_integer():
                raise ValueError("请填写整数")
            return int(number)
        return int(number) if number.is_integer() and "." not in text else number
    if f.type == "datetime":
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("请填写日期和时间") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(timezone))
        return moment.isoformat()
    if f.type == "list":
        return [line.strip() for line in text.splitlines() if line.strip()]
    if f.type == "point":
        parts = [p for p in re.split(r"[,，\s]+", text) if p]
        try:
            lng, lat = (float(p) for p in parts)
        except ValueError:
            raise ValueError("请按“经度,纬度”填写两个数字") from None
        return [lng, lat]
    if f.type == "geometry":
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError("请填写 GeoJSON") from None
    return text  # string, text, enum, date: the service checks them


_MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^is required"), "此项必填"),
    (re.compile(r"^expected a whole number"), "请填写整数"),
    (re.compile(r"^expected (a|a finite) number"), "请填写数字"),
    (re.compile(r"is not one of"), "请从选项中选择"),
    (re.compile(r"^expected a date YYYY"), "请填写日期（年-月-日）"),
    (re.compile(r"^expected a date-time"), "请填写日期和时间"),
    (re.compile(r"outside the years"), "日期超出范围"),
    (re.compile(r"characters long"), "内容过长"),
    (re.compile(r"^expected a point"), "请按“经度,纬度”填写"),
)
_BOUNDS = re.compile(r"^(\S+) is (below the minimum|above the maximum) (\S+)$")


def message_of(problem: str) -> str:
    """The engine's message about a field value, as duty staff read it."""
    bound = _BOUNDS.match(problem)
    if bound:
        return f"不能{'小于' if bound.group(2).startswith('below') else '大于'} {bound.group(3)}"
    for pattern, text in _MESSAGES:
        if pattern.search(problem):
            return text
    return f"填写有误：{problem}"
