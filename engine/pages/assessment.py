"""``/ui/assessment`` (考核): the assessment report of a period, its charts and downloads.

The period is ``?period=`` as the API takes it (``2026-09`` a month, ``2026-Q3`` a
quarter, ``2026`` a year; :func:`~engine.assessment.periods.period_dates`), chosen
in a plain GET form; without it, the current month in the installation's time zone.
A value the period parser refuses is a 422 page naming the field, and nothing else.

The report is the assessment service's (:class:`~engine.assessment.service.Assessment`,
the same as ``GET /assessment`` and ``gengbao report assessment``) with the
signed-in person as the viewer: the rows of the units of their chain only.

The charts are :func:`~engine.assessment.charts.render_chart`'s SVG, embedded as
``<img>`` pointing at ``/ui/assessment/charts/{name}.svg`` rather than inline: each
SVG carries its own ``<style>`` (which the pages' ``style-src 'self'`` would block
inline) and an ``id`` per picture (three inline would repeat it).  That route, and
``/ui/assessment.csv`` and ``/ui/assessment.xlsx`` (the report table as the API and
the CLI write it), check the session and compute the report for the same viewer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from engine.assessment import Report, UnitRow, render
from engine.assessment.charts import CHARTS, render_chart
from engine.assessment.periods import period_dates
from engine.errors import InvalidData
from engine.grid.visibility import Viewer
from engine.pages.render import error_page, page
from engine.pages.session import app_of, current, to_login

__all__ = ["CHART_TITLES", "XLSX", "period_choices", "router"]

router = APIRouter()

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHART_TITLES = {"scores": "得分", "patrols": "巡查次数与应巡查次数", "overdue": "超时与逐级上报"}
MONTHS, QUARTERS, YEARS = 12, 8, 3  # how far back the chooser offers
MAX_INDENT = 3


@dataclass(frozen=True)
class Choice:
    value: str  # what ?period= takes
    label: str


def _current_month(request: Request) -> str:
    app = app_of(request)
    today = app.clock.now().astimezone(ZoneInfo(app.settings.timezone)).date()
    return f"{today.year:04d}-{today.month:02d}"


def period_choices(today: dt.date) -> list[tuple[str, list[Choice]]]:
    """The chooser's groups, newest first: the last months, quarters and years."""
    months, quarters = [], []
    year, month = today.year, today.month
    for _ in range(MONTHS):
        months.append(Choice(f"{year:04d}-{month:02d}", f"{year}年{month}月"))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    year, quarter = today.year, (today.month - 1) // 3 + 1
    for _ in range(QUARTERS):
        quarters.append(Choice(f"{year:04d}-Q{quarter}", f"{year}年第{quarter}季度"))
        year, quarter = (year, quarter - 1) if quarter > 1 else (year - 1, 4)
    years = [Choice(f"{y:04d}", f"{y}年") for y in range(today.year, today.year - YEARS, -1)]
    return [("按月", months), ("按季度", quarters), ("按年", years)]


def _period(request: Request) -> str:
    """``?period=`` (trimmed, at most 20 characters kept: longer is refused anyway), or
    the current month."""
    sent = request.query_params.get("period")
    if sent is None or not sent.strip():
        return _current_month(request)
    text = sent.strip()
    return text.upper() if "q" in text else text  # 2026-q3 is 2026-Q3


def _report(request: Request, period: str, person: str) -> Report | Response:
    """The report of *period* for *person*, or the 422 page of a bad period."""
    if len(period) > 20:
        return _bad_period(request)
    try:
        first, last = period_dates(period)
    except InvalidData:
        return _bad_period(request)
    assessment = app_of(request).assessment
    return assessment.report(first, last, assessment.config(), viewer=Viewer(person))


def _bad_period(request: Request) -> Response:
    return error_page(
        request,
        422,
        "考核期间（period）填写有误：请写成 2026-09（月）、2026-Q3（季度）或 2026（年）。",
    )


def _pct(value: float | None) -> str:
    return f"{value * 100:.1f}%" if value is not None else "—"


def _hours(value: float | None) -> str:
    return f"{value:g}" if value is not None else "—"


def _row(r: UnitRow, base: int) -> dict[str, object]:
    return {
        "unit": r.unit,
        "name": r.name,
        "indent": min(r.depth - base, MAX_INDENT),
        "score": f"{r.score:.2f}",
        "patrols_done": r.patrols_done,
        "patrols_required": r.patrols_required,
        "patrol_rate": _pct(r.patrol_rate),
        "missed_patrols": r.missed_patrols,
        "overdue": r.overdue,
        "overdue_by_state": "；".join(f"{s}:{n}" for s, n in sorted(r.overdue_by_state.items())),
        "escalations": r.escalations,
        "cases": r.cases,
        "stop_on_time": _pct(r.share("stop")),
        "report_on_time": _pct(r.share("report")),
        "verify_on_time": _pct(r.share("verify")),
        "median_stop_hours": _hours(r.median_hours["stop"]),
        "findings": r.findings,
        "missed": r.missed,
        "supervisions": r.supervisions,
    }


@router.get("/assessment")
def assessment(request: Request) -> Response:
    session = current(request)
    if session is None:
        return to_login(request)
    period = _period(request)
    report = _report(request, period, session.person)
    if isinstance(report, Response):
        return report
    app = app_of(request)
    today = app.clock.now().astimezone(ZoneInfo(app.settings.timezone)).date()
    groups = period_choices(today)
    if all(c.value != period for _, cs in groups for c in cs):  # a period further back
        groups.insert(0, ("其他期间", [Choice(period, period)]))
    base = min((r.depth for r in report.rows), default=0)
    return page(
        request,
        "assessment.html",
        title="考核",
        period=period,
        groups=groups,
        date_from=report.date_from.isoformat(),
        date_to=report.date_to.isoformat(),
        rows=[_row(r, base) for r in report.rows],
        charts=list(CHART_TITLES.items()),
        base_score=f"{report.config.base:g}",
    )


def _download(report: Report, body: bytes, media_type: str, suffix: str) -> Response:
    name = f"assessment-{report.date_from}-{report.date_to}.{suffix}"
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/assessment.csv")
def assessment_csv(request: Request) -> Response:
    session = current(request)
    if session is None:
        return to_login(request)
    report = _report(request, _period(request), session.person)
    if isinstance(report, Response):
        return report
    text = render(report, "csv")
    assert isinstance(text, str)
    return _download(report, text.encode("utf-8"), "text/csv; charset=utf-8", "csv")


@router.get("/assessment.xlsx")
def assessment_xlsx(request: Request) -> Response:
    session = current(request)
    if session is None:
        return to_login(request)
    report = _report(request, _period(request), session.person)
    if isinstance(report, Response):
        return report
    body = render(report, "xlsx")
    assert isinstance(body, bytes)
    return _download(report, body, XLSX, "xlsx")


@router.get("/assessment/charts/{name}.svg")
def assessment_chart(request: Request, name: str) -> Response:
    session = current(request)
    if session is None:
        return to_login(request)
    if name not in CHARTS:
        return error_page(request, 404, "没有这张图表。")
    report = _report(request, _period(request), session.person)
    if isinstance(report, Response):
        return report
    return Response(
        render_chart(report, name),
        media_type="image/svg+xml",
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            # opened on its own: the picture's own <style>, nothing else
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        },
    )
