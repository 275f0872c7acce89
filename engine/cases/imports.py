"""Case import files → the items of a bulk create, each with its line number.

Three formats, chosen by the file's extension (``.jsonl``/``.ndjson``, ``.csv``,
``.geojson``) or, without one (stdin), by the content (a FeatureCollection is
GeoJSON, ``{`` JSON Lines, anything else CSV):

- **JSON Lines**: one object per line, ``{"unit": …, "data": {…}, "key": …}``
  (``data`` and ``key`` optional); blank lines are skipped.
- **CSV** with a header row (line 1): a ``unit`` column (or 单位/所属单位/网格),
  an optional ``key`` column (or 幂等键), and the workflow's fields by name or by
  Chinese title (``area_m2`` or ``占地面积（平方米）``).  Cells are converted to the
  field's type: numbers, whole numbers, booleans (true/false, yes/no, 1/0, 是/否),
  enum values, a point as ``lng,lat`` or ``[lng, lat]``, a list as a JSON array or
  ``;``-separated; an empty cell is no value (the field's default, if any).  A cell
  that does not convert is passed on as text, so the workflow's own check says why
  (``expected a number, got 'abc'``).

- **GeoJSON**: a FeatureCollection of satellite spots (卫片图斑) or findings, one case
  per feature: its ``properties`` are the fields (by name or Chinese title, converted
  like CSV cells when they are text), ``unit``/``单位`` and ``key`` as in CSV, and its
  geometry goes to the workflow's first field of type ``geometry``.  A feature without a
  unit is given one by the grid's boundaries (:func:`assign_units`): the lowest unit
  containing its geometry, or overlapping it most.  "Line" N means feature N.

UTF-8, with or without Excel's byte-order mark.  A line that cannot be read is
a :class:`~engine.cases.batch.Problem` at its line number; a file that cannot be
read at all (not UTF-8, no unit column, an unknown column) is an
:class:`~engine.errors.ImportFileError`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.cases.batch import NewCase, Problem
from engine.definitions import FieldSpec
from engine.errors import ImportFileError

__all__ = ["FORMATS", "Parsed", "decode", "format_of", "parse"]

FORMATS = ("jsonl", "csv", "geojson")
UNIT_HEADERS = ("unit", "单位", "所属单位", "网格")
KEY_HEADERS = ("key", "幂等键")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".geojson": "geojson"}
_TRUE = {"true", "yes", "y", "1", "是", "有"}
_FALSE = {"false", "no", "n", "0", "否", "无"}


@dataclass(frozen=True, kw_only=True)
class Parsed:
    """A file's items, and the lines that could not be read as items."""

    items: list[NewCase]
    problems: list[Problem]


def decode(raw: bytes, source: str) -> str:
    """The file's text (UTF-8, a byte-order mark dropped)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ImportFileError(
            f"{source}:{line}: not UTF-8 (byte {exc.start}); save the file as UTF-8",
            file=source,
            line=line,
        ) from None


def format_of(source: str, text: str) -> str:
    """``jsonl``, ``csv`` or ``geojson``: by *source*'s extension, else by the content."""
    for ending, name in _EXTENSIONS.items():
        if source.lower().endswith(ending):
            return name
    head = text.lstrip()
    if head.startswith("{") and '"FeatureCollection"' in head[:2000]:
        return "geojson"
    return "jsonl" if head.startswith("{") else "csv"


def parse(text: str, source: str, fields: Sequence[FieldSpec], fmt: str | None = None) -> Parsed:
    """The items of *text* (the file *source*) for a workflow with *fields*."""
    fmt = fmt or format_of(source, text)
    if fmt == "jsonl":
        return _jsonl(text)
    if fmt == "csv":
        return _csv(text, source, fields)
    if fmt == "geojson":
        return _geojson(text, source, fields)
    raise ImportFileError(f"{source}: unknown format {fmt!r}; known: {', '.join(FORMATS)}")


def _jsonl(text: str) -> Parsed:
    items: list[NewCase] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(
                Problem(
                    line=number,
                    field=None,
                    message=f"not valid JSON: {exc.msg} at character {exc.pos + 1}",
                    code="invalid_line",
                )
            )
            continue
        item, found = _item(number, value)
        if item is None:
            problems.extend(found)
        else:
            items.append(item)
    return Parsed(items=items, problems=problems)


def _item(number: int, value: Any) -> tuple[NewCase | None, list[Problem]]:
    def problem(field: str | None, message: str) -> Problem:
        return Problem(line=number, field=field, message=message, code="invalid_line")

    if not isinstance(value, dict):
        return None, [problem(None, 'expected a JSON object {"unit": ..., "data": {...}}')]
    found: list[Problem] = []
    unknown = sorted(set(value) - {"unit", "data", "key"})
    if unknown:
        found.append(problem(unknown[0], "unknown key; known: data, key, unit"))
    unit, data, key = value.get("unit"), value.get("data", {}), value.get("key")
    if not isinstance(unit, str) or not unit:
        found.append(problem("unit", "a unit code (text) is required"))
    if not isinstance(data, dict):
        found.append(problem("data", "expected an object of the workflow's fields"))
    if key is not None and (not isinstance(key, str) or not key or len(key) > 200):
        found.append(problem("key", "an idempotency key is text of 1 to 200 characters"))
    if found or not isinstance(unit, str):
        return None, found
    return NewCase(line=number, unit=unit, data=data, key=key), []


def _csv(text: str, source: str, fields: Sequence[FieldSpec]) -> Parsed:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"{source}: the file is empty", file=source) from None
    except csv.Error as exc:
        raise ImportFileError(f"{source}:1: {exc}", file=source) from None
    by_header = _by_header(fields)
    columns: list[tuple[str, FieldSpec | None]] = []  # (what the column is, its field)
    for cell in header:
        name = cell.strip()
        if name in UNIT_HEADERS:
            columns.append(("unit", None))
        elif name in KEY_HEADERS:
            columns.append(("key", None))
        elif name in by_header:
            columns.append(("data", by_header[name]))
        else:
            known = ", ".join(["unit", "key", *(s.name for s in fields)])
            raise ImportFileError(
                f"{source}:1: column {name!r} is not a field of the workflow; known: {known} "
                "(or their titles)",
                file=source,
                line=1,
            )
    if ("unit", None) not in columns and not any(f.type == "geometry" for f in fields):
        raise ImportFileError(f"{source}:1: no unit column (unit or 单位)", file=source, line=1)
    items: list[NewCase] = []
    problems: list[Problem] = []
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            why = f"unreadable CSV: {exc}"
            problems.append(Problem(line=line, field=None, message=why, code="invalid_line"))
            line = reader.line_num + 1
            continue
        start, line = line, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(columns):
            problems.append(
                Problem(
                    line=start,
                    field=None,
                    message=f"{len(cells)} cells, but the header names {len(columns)} columns",
                    code="invalid_line",
                )
            )
            continue
        unit, key, data = "", None, {}
        for (kind, field), cell in zip(columns, cells, strict=False):
            value = cell.strip()
            if kind == "unit":
                unit = value
            elif kind == "key":
                key = value or None
            elif field is not None and value:
                data[field.name] = convert(field, value)
        if not unit and not any(f.type == "geometry" for f in fields):
            problems.append(
                Problem(line=start, field="unit", message="is required", code="invalid_line")
            )
            continue
        items.append(NewCase(line=start, unit=unit, data=data, key=key))
    return Parsed(items=items, problems=problems)


def _geojson(text: str, source: str, fields: Sequence[FieldSpec]) -> Parsed:
    try:
        collection = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFileError(
            f"{source}:{exc.lineno}: not valid JSON: {exc.msg}", file=source, line=exc.lineno
        ) from None
    features = collection.get("features") if isinstance(collection, dict) else None
    if not isinstance(features, list):
        raise ImportFileError(f"{source}: not a GeoJSON FeatureCollection", file=source)
    target = next((f for f in fields if f.type == "geometry"), None)
    if target is None:
        raise ImportFileError(
            f"{source}: the workflow has no field of type geometry for the features' shapes",
            file=source,
        )
    by_title = _by_header(fields)
    items: list[NewCase] = []
    problems: list[Problem] = []
    for number, feature in enumerate(features, start=1):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            problems.append(
                Problem(
                    line=number, field=None, message="not a GeoJSON Feature", code="invalid_line"
                )
            )
            continue
        props = feature.get("properties") or {}
        if not isinstance(props, dict):
            props = {}
        unit, key, data = "", None, {}
        unknown: list[str] = []
        for name, value in props.items():
            if name in UNIT_HEADERS:
                unit = str(value or "")
            elif name in KEY_HEADERS:
                key = str(value) if value else None
            elif name in by_title:
                spec = by_title[name]
                data[spec.name] = convert(spec, value) if isinstance(value, str) else value
            else:
                unknown.append(name)
        if unknown:
            known = ", ".join(["unit", "key", *(s.name for s in fields)])
            message = f"property {unknown[0]!r} is not a field of the workflow; known: {known}"
            problems.append(
                Problem(line=number, field=unknown[0], message=message, code="invalid_line")
            )
            continue
        data[target.name] = feature.get("geometry")
        items.append(NewCase(line=number, unit=unit, data=data, key=key))
    return Parsed(items=items, problems=problems)


def assign_units(
    parsed: Parsed,
    fields: Sequence[FieldSpec],
    locate_many: Callable[[list[Any]], list[str | None]],
) -> Parsed:
    """*parsed* with a unit for every item that has none, from its geometry field
    (*locate_many*: the grid's lookup, :meth:`engine.grid.views.GridViews.locator`);
    an item whose geometry is unusable or lies outside every boundary becomes a problem
    at its line."""
    from engine.errors import InvalidGeometry
    from engine.geo.shapes import parse_geometry

    target = next((f for f in fields if f.type == "geometry"), None)
    lacking = [item for item in parsed.items if not item.unit]
    if not lacking:
        return parsed
    problems = list(parsed.problems)
    shapes: list[Any] = []
    placeable: list[NewCase] = []
    for item in lacking:
        value = item.data.get(target.name) if target is not None else None
        if value is None:
            problems.append(
                Problem(line=item.line, field="unit", message="is required", code="invalid_line")
            )
            continue
        try:
            shapes.append(parse_geometry(value, target.name if target else "geometry"))
        except InvalidGeometry as exc:
            problems.append(
                Problem(line=item.line, field=exc.where, message=exc.problem, code="invalid_line")
            )
            continue
        placeable.append(item)
    units = dict(zip((id(i) for i in placeable), locate_many(shapes), strict=True))
    items: list[NewCase] = []
    for item in parsed.items:
        if item.unit:
            items.append(item)
        elif id(item) in units:
            code = units[id(item)]
            if code is None:
                problems.append(
                    Problem(
                        line=item.line,
                        field="unit",
                        message="not given, and no unit's boundary holds the geometry",
                        code="invalid_line",
                    )
                )
            else:
                items.append(dataclasses.replace(item, unit=code))
    problems.sort(key=lambda p: p.line)
    return Parsed(items=items, problems=problems)


def _by_header(fields: Sequence[FieldSpec]) -> dict[str, FieldSpec]:
    by_header: dict[str, FieldSpec] = {}
    for spec in fields:
        by_header[spec.name] = spec
        if spec.title:
            by_header.setdefault(spec.title, spec)
    return by_header


def convert(spec: FieldSpec, text: str) -> Any:
    """A CSV cell as the value of *spec*'s type; the text itself when it does not convert."""
    kind = spec.type
    if kind == "enum":
        for value in spec.values:
            if str(value) == text:
                return value
        return text
    if kind in ("number", "integer"):
        return _number(text, whole=kind == "integer")
    if kind == "boolean":
        low = text.lower()
        return True if low in _TRUE else False if low in _FALSE else text
    if kind == "point":
        inner = text.strip("[]（）() ")
        parts = [p.strip() for p in inner.replace("，", ",").split(",")]
        numbers = [_number(p, whole=False) for p in parts]
        if len(numbers) == 2 and all(isinstance(n, (int, float)) for n in numbers):
            return numbers
        return text
    if kind == "geometry":  # a GeoJSON object in one cell
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    if kind == "list":
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return text
            return value
        parts = [p.strip() for p in text.replace("；", ";").split(";") if p.strip()]
        if spec.items in ("number", "integer"):
            return [_number(p, whole=spec.items == "integer") for p in parts]
        return parts
    return text


def _number(text: str, *, whole: bool) -> Any:
    cleaned = text.replace(",", "") if "," in text and "." in text else text
    try:
        return int(cleaned)
    except ValueError:
        pass
    if whole:
        return text
    try:
        value = float(cleaned)
    except ValueError:
        return text
    return value if value == value and value not in (float("inf"), float("-inf")) else text
