"""Survey and satellite findings (年度变更调查 / 卫片图斑) imported from CSV or GeoJSON.

A CSV file is UTF-8 (a byte-order mark from Excel is fine) with a header row
naming the columns ``ref, unit, found_on, area_m2, lng, lat, geometry, note`` in
any order (Chinese titles are accepted too: 图斑编号/编号, 单位/所属单位, 发现日期,
面积, 经度, 纬度, 范围/图斑范围, 备注).  ``ref``, ``unit`` and ``found_on`` are
required in every row; ``lng``/``lat`` come together or not at all; ``geometry``
is a GeoJSON Point, Polygon or MultiPolygon in the cell, checked like every
shape (:func:`engine.geo.shapes.parse_geometry`).  A ``.geojson`` file is a
FeatureCollection, one finding per feature: its ``properties`` are the same
columns, its geometry the finding's shape, and "line" N is feature N.  A point
shape gives ``lng``/``lat`` when they are missing, a polygon its geodesic area
when ``area_m2`` is.

Every bad row is reported with its line number and the good rows are
imported — in one transaction, so a crash imports nothing.  A ``ref``
already in the database is updated when the row differs and left alone when
it does not, so importing the same file twice changes nothing.

Whether the grid *missed* a finding is decided by the assessment (see
:mod:`engine.assessment.matching`), not stored here: a case linked to the
finding later still counts.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from engine.clock import Clock
from engine.errors import InvalidGeometry, SurveyFileError
from engine.store import map_storage_errors
from engine.store.tables import survey_findings, units

__all__ = [
    "COLUMNS",
    "ImportResult",
    "RowProblem",
    "SurveyFileError",
    "import_csv",
    "metres_per_degree",
]

COLUMNS = ("ref", "unit", "found_on", "area_m2", "lng", "lat", "geometry", "note")
REQUIRED = ("ref", "unit", "found_on")
ALIASES = {
    "编号": "ref",
    "图斑编号": "ref",
    "单位": "unit",
    "所属单位": "unit",
    "网格": "unit",
    "发现日期": "found_on",
    "面积": "area_m2",
    "面积（平方米）": "area_m2",
    "经度": "lng",
    "纬度": "lat",
    "范围": "geometry",
    "图斑范围": "geometry",
    "备注": "note",
}
SOURCES = ("年度变更调查", "卫片图斑")
_COMPARED = ("unit_code", "found_on", "area_m2", "lng", "lat", "geometry", "note", "source")


@dataclass(frozen=True)
class RowProblem:
    line: int
    message: str
    ref: str | None = None
    warning: bool = False  # a remark (an ignored column); the row data is fine

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "ref": self.ref,
            "message": self.message,
            "severity": "warning" if self.warning else "error",
        }


@dataclass
class ImportResult:
    file: str
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "imported": self.imported,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "problems": [p.as_dict() for p in self.problems],
        }


def metres_per_degree(lat: float) -> tuple[float, float]:
    """(metres per degree of longitude, of latitude) at latitude *lat* (WGS 84 series)."""
    phi = math.radians(lat)
    lng_m = 111412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi) + 0.118 * math.cos(5 * phi)
    lat_m = (
        111132.92
        - 559.82 * math.cos(2 * phi)
        + 1.175 * math.cos(4 * phi)
        - 0.0023 * math.cos(6 * phi)
    )
    return lng_m, lat_m


def import_csv(
    engine: Engine,
    clock: Clock,
    path: str | Path,
    timezone: str,
    source: str = SOURCES[0],
) -> ImportResult:
    file = Path(path)
    text = _read(file)
    now = clock.now()
    result = ImportResult(str(file))
    with map_storage_errors(engine, "import findings into"), engine.begin() as conn:
        known = set(conn.execute(select(units.c.code).where(units.c.active.is_(True))).scalars())
        parse = _parse_geojson if _is_geojson(file, text) else _parse
        rows = parse(text, str(file), known, timezone, result.problems)
        for row in rows:
            row.update(source=source, file=file.name, imported_at=now)
        _store(conn, rows, result)
    return result


def _read(file: Path) -> str:
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise SurveyFileError(f"{file}: cannot read: {exc}", file=str(file)) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SurveyFileError(
            f"{file}:{line}: not UTF-8 (byte {exc.start}); save the file as UTF-8 CSV",
            file=str(file),
            line=line,
        ) from None


def _parse(
    text: str, filename: str, known: set[str], timezone: str, problems: list[RowProblem]
) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise SurveyFileError(f"{filename}: the file is empty", file=filename) from None
    except csv.Error as exc:
        raise SurveyFileError(f"{filename}:1: {exc}", file=filename) from None
    names = [ALIASES.get(h.strip(), h.strip().lower()) for h in header]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise SurveyFileError(
            f"{filename}:1: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}",
            file=filename,
        )
    for name in names:
        if name not in COLUMNS:
            problems.append(
                RowProblem(1, f"column {name!r} is not one of ours; ignored", warning=True)
            )
    zone = ZoneInfo(timezone)
    rows: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(RowProblem(line, f"unreadable CSV: {exc}"))
            line = reader.line_num + 1
            continue
        start, line = line, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        record = {n: c.strip() for n, c in zip(names, cells, strict=False) if n in COLUMNS}
        row = _row(record, start, known, zone, problems, len(cells), len(names))
        if row is None:
            continue
        if row["ref"] in first_line:
            problems.append(
                RowProblem(
                    start,
                    f"ref {row['ref']!r} is already on line {first_line[row['ref']]}",
                    row["ref"],
                )
            )
            continue
        first_line[row["ref"]] = start
        rows.append(row)
    return rows


def _row(
    record: dict[str, str],
    line: int,
    known: set[str],
    zone: ZoneInfo,
    problems: list[RowProblem],
    cells: int,
    columns: int,
) -> dict[str, Any] | None:
    ref = record.get("ref") or None
    why: list[str] = []
    if cells != columns:
        why.append(f"{cells} cell(s), the header has {columns}")
    if ref is None:
        why.append("ref is empty")
    unit = record.get("unit", "")
    if not unit:
        why.append("unit is empty")
    elif unit not in known:
        why.append(f"unknown or inactive unit {unit!r}")
    found_on = _date(record.get("found_on", ""), why)
    area = _number(record.get("area_m2", ""), "area_m2", why, 0, None)
    lng = _number(record.get("lng", ""), "lng", why, -180, 180)
    lat = _number(record.get("lat", ""), "lat", why, -90, 90)
    if (lng is None) != (lat is None) and not any(w.startswith(("lng", "lat")) for w in why):
        why.append("lng and lat go together: give both or neither")
    shape = _shape(record.get("geometry", ""), why)
    if shape is not None and shape.geom_type == "Point" and lng is None and lat is None:
        lng, lat = shape.x, shape.y
    if shape is not None and area is None and shape.geom_type != "Point":
        from engine.geo.area import area_m2 as geodesic_area

        area = round(geodesic_area(shape), 2)
    if why:
        problems.append(RowProblem(line, "; ".join(why), ref))
        return None
    assert ref is not None and found_on is not None
    until = dt.datetime.combine(found_on + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    m_lng, m_lat = metres_per_degree(lat) if lat is not None else (None, None)
    return {
        "ref": ref,
        "unit_code": unit,
        "found_on": found_on,
        "found_until": until.astimezone(dt.UTC),
        "area_m2": area,
        "lng": lng,
        "lat": lat,
        "geometry": _plain_shape(shape),
        "m_per_deg_lng": m_lng,
        "m_per_deg_lat": m_lat,
        "note": record.get("note") or None,
        "line": line,
    }


def _shape(text: str, why: list[str]) -> Any:
    """The shapely shape of a GeoJSON cell, or None (empty, or a problem added to *why*).
    shapely loads here, not with the module: numpy's threads must not start with every
    command (they would miss the signals ``gengbao worker`` blocks)."""
    if not text:
        return None
    from engine.geo.shapes import parse_geometry

    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        why.append("geometry is not GeoJSON (a Point, Polygon or MultiPolygon object)")
        return None
    try:
        return parse_geometry(value)
    except InvalidGeometry as exc:
        why.append(f"{exc.where}: {exc.problem}")
        return None


def _plain_shape(shape: Any) -> dict[str, Any] | None:
    if shape is None:
        return None
    from engine.geo.shapes import as_geojson

    return as_geojson(shape)


def _is_geojson(file: Path, text: str) -> bool:
    if file.suffix.lower() == ".geojson":
        return True
    head = text.lstrip()
    return head.startswith("{") and '"FeatureCollection"' in head[:2000]


def _parse_geojson(
    text: str, filename: str, known: set[str], timezone: str, problems: list[RowProblem]
) -> list[dict[str, Any]]:
    """The rows of a FeatureCollection: feature N's properties as columns, its shape."""
    try:
        collection = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SurveyFileError(
            f"{filename}:{exc.lineno}: not valid JSON: {exc.msg}", file=filename, line=exc.lineno
        ) from None
    features = collection.get("features") if isinstance(collection, dict) else None
    if not isinstance(features, list):
        raise SurveyFileError(f"{filename}: not a GeoJSON FeatureCollection", file=filename)
    zone = ZoneInfo(timezone)
    rows: list[dict[str, Any]] = []
    first: dict[str, int] = {}
    for number, feature in enumerate(features, start=1):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            problems.append(RowProblem(number, "not a GeoJSON Feature"))
            continue
        props = feature.get("properties") or {}
        record: dict[str, str] = {}
        for key, value in props.items() if isinstance(props, dict) else []:
            name = ALIASES.get(str(key).strip(), str(key).strip().lower())
            if name in COLUMNS and name != "geometry" and value is not None:
                record[name] = str(value).strip()
        if feature.get("geometry") is not None:
            record["geometry"] = json.dumps(feature["geometry"])
        row = _row(record, number, known, zone, problems, 1, 1)
        if row is None:
            continue
        if row["ref"] in first:
            message = f"ref {row['ref']!r} is already feature {first[row['ref']]}"
            problems.append(RowProblem(number, message, row["ref"]))
            continue
        first[row["ref"]] = number
        rows.append(row)
    return rows


def _date(text: str, why: list[str]) -> dt.date | None:
    if not text:
        why.append("found_on is empty")
        return None
    try:
        return dt.date.fromisoformat(text.replace("/", "-"))
    except ValueError:
        try:
            return dt.datetime.strptime(text, "%Y/%m/%d").date()
        except ValueError:
            why.append(f"found_on {text!r} is not a date like 2026-09-18")
            return None


def _number(
    text: str, name: str, why: list[str], low: float | None, high: float | None
) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        why.append(f"{name} {text!r} is not a number")
        return None
    if not math.isfinite(value) or (low is not None and value < low):
        why.append(f"{name} {text!r} is out of range")
        return None
    if high is not None and value > high:
        why.append(f"{name} {text!r} is out of range")
        return None
    return value


def _store(conn: Connection, rows: list[dict[str, Any]], result: ImportResult) -> None:
    existing: dict[str, Any] = {}
    refs = [r["ref"] for r in rows]
    for chunk in _chunks(refs, 500):
        query = select(survey_findings).where(survey_findings.c.ref.in_(chunk))
        existing.update({r.ref: r for r in conn.execute(query)})
    fresh = [r for r in rows if r["ref"] not in existing]
    changed = [
        r
        for r in rows
        if r["ref"] in existing and any(getattr(existing[r["ref"]], k) != r[k] for k in _COMPARED)
    ]
    if fresh:
        conn.execute(insert(survey_findings), fresh)
    if changed:
        columns = [c for c in changed[0] if c != "ref"]
        stmt = (
            update(survey_findings)
            .where(survey_findings.c.ref == bindparam("k_ref"))
            .values({c: bindparam(f"v_{c}") for c in columns})
        )
        conn.execute(
            stmt, [{"k_ref": r["ref"], **{f"v_{c}": r[c] for c in columns}} for r in changed]
        )
    result.imported = len(fresh)
    result.updated = len(changed)
    result.unchanged = len(rows) - len(fresh) - len(changed)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
