"""The assessment dashboard's data: ``GET /assessment`` (JSON), ``GET /assessment.csv``,
``GET /assessment.xlsx`` (the report table, as ``gengbao report assessment`` writes
it) and ``GET /assessment/charts/{name}.svg`` (scores, patrols, overdue).

Each takes the period (``period=2026-09``, ``2026-Q3``, ``2026``, or ``from`` and
``to``) and optional ``unit`` and ``level``; the rows are those of the units the
token's actor sees (a ``unit`` outside them answers 404).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse, Response

from engine.api.assessment_schemas import AssessmentReport
from engine.api.auth import PrincipalDep
from engine.api.deps import ServicesDep
from engine.api.schemas import ErrorBody
from engine.assessment import Report, render
from engine.assessment.charts import render_chart
from engine.assessment.periods import period_dates
from engine.errors import InvalidData

__all__ = ["router"]

router = APIRouter(tags=["assessment"])

DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Level = Literal["district", "town", "village", "group"]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in (401, 422, *codes)}


def _date(text: str | None, field: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidData({field: f"not a date: {text!r}"}) from None


def the_report(
    services: ServicesDep,
    principal: PrincipalDep,
    period: Annotated[
        str | None,
        Query(max_length=20, description="2026 (a year), 2026-09 (a month), 2026-Q3"),
    ] = None,
    date_from: Annotated[
        str | None, Query(alias="from", pattern=DATE, description="first local day")
    ] = None,
    date_to: Annotated[
        str | None, Query(alias="to", pattern=DATE, description="last local day")
    ] = None,
    unit: Annotated[
        str | None, Query(max_length=200, description="this unit and everything below it")
    ] = None,
    level: Annotated[Level | None, Query(description="only rows of this level")] = None,
) -> Report:
    """The report the query asks for, for the token's actor (a dependency of every route)."""
    first, last = period_dates(period, _date(date_from, "from"), _date(date_to, "to"))
    assessment = services.app.assessment
    return assessment.report(
        first, last, assessment.config(), unit=unit, level=level, viewer=principal.viewer
    )


ReportDep = Annotated[Report, Depends(the_report)]


def _attachment(report: Report, suffix: str) -> dict[str, str]:
    name = f"assessment-{report.date_from}-{report.date_to}.{suffix}"
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get(
    "/assessment",
    response_model=AssessmentReport,
    responses=_errors(404),
    summary="The assessment report (考评) of a period: one row per unit the caller sees",
)
def get_assessment(report: ReportDep) -> JSONResponse:
    return JSONResponse(
        {
            "from": report.date_from.isoformat(),
            "to": report.date_to.isoformat(),
            "unit": report.unit,
            "level": report.level,
            "rows": report.as_dicts(),
        }
    )


@router.get(
    "/assessment.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV"},
        **_errors(404),
    },
    summary="The assessment report as CSV (UTF-8 with BOM, Chinese column titles)",
)
def assessment_csv(report: ReportDep) -> Response:
    body = render(report, "csv")
    assert isinstance(body, str)
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers=_attachment(report, "csv"),
    )


@router.get(
    "/assessment.xlsx",
    response_class=Response,
    responses={
        200: {
            "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}},
            "description": "an Excel workbook, one sheet",
        },
        **_errors(404),
    },
    summary="The assessment report as an Excel workbook",
)
def assessment_xlsx(report: ReportDep) -> Response:
    body = render(report, "xlsx")
    assert isinstance(body, bytes)
    return Response(body, media_type=XLSX, headers=_attachment(report, "xlsx"))


@router.get(
    "/assessment/charts/{name}.svg",
    response_class=Response,
    responses={
        200: {
            "content": {"image/svg+xml": {"schema": {"type": "string"}}},
            "description": "an SVG picture",
        },
        **_errors(404),
    },
    summary="A chart of the assessment report: scores, patrols (done vs required), overdue",
)
def assessment_chart(
    name: Annotated[Literal["scores", "patrols", "overdue"], Path()], report: ReportDep
) -> Response:
    return Response(
        render_chart(report, name),
        media_type="image/svg+xml",
        headers={"X-Content-Type-Options": "nosniff"},
    )
