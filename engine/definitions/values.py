"""Field values: check one value against its declaration, and normalise it to JSON.

Used for defaults at load time and for case data and payloads at run time,
so a value accepted in one place is accepted everywhere.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

from engine.definitions.model import FieldSpec

__all__ = ["MAX_YEAR", "MIN_YEAR", "check_value", "normalize", "validate_data"]

MIN_YEAR, MAX_YEAR = 1900, 2999  # dates and date-times a case can hold


def check_value(spec: FieldSpec, value: Any) -> str | None:
    """Why *value* does not fit *spec*, or ``None`` when it does."""
    return _check(spec.type, spec, value)


def _check(ftype: str, spec: FieldSpec, value: Any) -> str | None:
    if ftype in ("string", "text"):
        if not isinstance(value, str):
            return f"expected text, got {_show(value)}"
        if len(value) > spec.text_limit:
            return (
                f"is {len(value):,} characters long; at most {spec.text_limit:,} "
                "(the field's max_length)"
            )
        return None
    if ftype in ("number", "integer"):
        if ftype == "integer" and not (isinstance(value, int) and not isinstance(value, bool)):
            return f"expected a whole number, got {_show(value)}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number, got {_show(value)}"
        if not math.isfinite(value):
            return f"expected a finite number, got {value}"
        if spec.min is not None and value < spec.min:
            return f"{value:g} is below the minimum {spec.min:g}"
        if spec.max is not None and value > spec.max:
            return f"{value:g} is above the maximum {spec.max:g}"
        return None
    if ftype == "boolean":
        return None if isinstance(value, bool) else f"expected true or false, got {_show(value)}"
    if ftype == "enum":
        if value in spec.values:
            return None
        return f"{_show(value)} is not one of: {', '.join(map(str, spec.values))}"
    if ftype == "date":
        day = _as_date(value)
        if day is None:
            return f"expected a date YYYY-MM-DD, got {_show(value)}"
        return None if MIN_YEAR <= day.year <= MAX_YEAR else _out_of_range(value)
    if ftype == "datetime":
        moment = _as_datetime(value)
        if moment is None:
            return f"expected a date-time with its offset (ISO 8601), got {_show(value)}"
        return None if MIN_YEAR <= moment.year <= MAX_YEAR else _out_of_range(value)
    if ftype == "point":
        if (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            and -180 <= value[0] <= 180
            and -90 <= value[1] <= 90
        ):
            return None
        return f"expected a point [lng, lat] in degrees, got {_show(value)}"
    if ftype == "geometry":  # GeoJSON Point, Polygon or MultiPolygon (a spot's outline)
        from engine.errors import InvalidGeometry
        from engine.geo.shapes import parse_geometry

        try:
            parse_geometry(value, "value")
        except InvalidGeometry as exc:
            return str(exc)
        return None
    if ftype == "list":
        if not isinstance(value, (list, tuple)):
            return f"expected a list, got {_show(value)}"
        if spec.items:
            for i, item in enumerate(value):
                problem = _check(spec.items, spec, item)
                if problem:
                    return f"item {i}: {problem}"
        return None
    return f"unknown type {ftype!r}"


def normalize(spec: FieldSpec, value: Any) -> Any:
    """The JSON form of a checked value (dates as ISO text, tuples as lists)."""
    if spec.type == "date":
        parsed = _as_date(value)
        return parsed.isoformat() if parsed else value
    if spec.type == "datetime":
        moment = _as_datetime(value)
        return moment.isoformat() if moment else value
    if spec.type == "geometry" and isinstance(value, Mapping):
        from engine.geo.shapes import as_geojson, parse_geometry

        return as_geojson(parse_geometry(value))  # a Feature becomes its geometry
    if isinstance(value, tuple):
        return list(value)
    if spec.type == "number" and isinstance(value, float) and value.is_integer():
        return value
    return value


def validate_data(
    specs: Iterable[FieldSpec],
    data: Mapping[str, Any],
    *,
    require: Iterable[str] = (),
    allow_unknown: bool = False,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Check *data* against *specs*: (normalised values, problems by field name)."""
    by_name = {s.name: s for s in specs}
    problems: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name, value in data.items():
        spec = by_name.get(name)
        if spec is None:
            if not allow_unknown:
                problems[name] = "unknown field; known: " + (", ".join(sorted(by_name)) or "none")
            continue
        if value is None:
            if spec.required or name in require:
                problems[name] = "is required"
            else:
                clean[name] = None
            continue
        problem = check_value(spec, value)
        if problem:
            problems[name] = problem
        else:
            clean[name] = normalize(spec, value)
    for name in require:
        if data.get(name) is None and name not in problems:
            problems[name] = "is required"
    return clean, problems


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else None
    if isinstance(value, str) and len(value) > 10:
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment if moment.tzinfo is not None else None
    return None


def _out_of_range(value: Any) -> str:
    # Deadlines are computed from dates (``until:``); year 9999 would overflow them.
    return f"{_show(value)} is outside the years {MIN_YEAR}–{MAX_YEAR}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
