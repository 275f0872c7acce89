"""Charts of the assessment report, drawn on the server as SVG: no JavaScript, no CDN.

=========  ==============================================================
scores     each unit's score (得分)
patrols    patrols done (巡查次数) against patrols required (应巡查次数)
overdue    overdue facts (超时次数) and escalations (逐级上报次数)
=========  ==============================================================

One horizontal bar per unit and series, the units in the report's order (the grid
tree), so long Chinese names read on a phone.  The geometry is computed here; the
Jinja2 template ``bars.svg.j2`` only places it, with autoescaping on: a unit named
``<script>`` is text in the picture.  Hand-built rather than a charting package:
three bar charts are ~150 lines, and the output stays small, stable and testable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.assessment.report import Report, UnitRow
from engine.errors import InvalidData

__all__ = ["CHARTS", "MAX_ROWS", "render_chart"]

MAX_ROWS = 300  # more units than this: narrow the report (a level, a unit)
WIDTH = 720
LABEL_X = 176  # labels end here (right-aligned); the plot starts after it
PLOT_RIGHT = WIDTH - 56  # room for the last bar's value
TOP = 56
BAR = 14
GAP = 10
LABEL_CHARS = 14


@dataclass(frozen=True)
class _Series:
    name: str
    color: str
    value: Callable[[UnitRow], float]


@dataclass(frozen=True)
class _Chart:
    title: str
    series: tuple[_Series, ...]


CHARTS: dict[str, _Chart] = {
    "scores": _Chart("得分", (_Series("得分", "#2b6cb0", lambda r: r.score),)),
    "patrols": _Chart(
        "巡查次数与应巡查次数",
        (
            _Series("巡查次数", "#2f855a", lambda r: r.patrols_done),
            _Series("应巡查次数", "#a0aec0", lambda r: r.patrols_required),
        ),
    ),
    "overdue": _Chart(
        "超时与逐级上报",
        (
            _Series("超时次数", "#c53030", lambda r: r.overdue),
            _Series("逐级上报次数", "#dd6b20", lambda r: r.escalations),
        ),
    ),
}


@cache
def _template() -> Any:
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(Path(__file__).parent),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
    )
    return env.get_template("bars.svg.j2")


def render_chart(report: Report, name: str) -> str:
    """The chart *name* (one of :data:`CHARTS`) of *report*, as an SVG document."""
    chart = CHARTS.get(name)
    if chart is None:
        raise InvalidData({"name": f"unknown chart {name!r}; one of {', '.join(CHARTS)}"})
    rows = report.rows[:MAX_ROWS]
    values = [[float(s.value(r)) for s in chart.series] for r in rows]
    flat = [v for vs in values for v in vs]
    low, high = min([0.0, *flat]), max([0.0, *flat])
    if high == low:
        high = low + 1
    scale = (PLOT_RIGHT - LABEL_X - 8) / (high - low)

    def x(v: float) -> float:
        return round(LABEL_X + 8 + (v - low) * scale, 1)

    step = BAR * len(chart.series) + GAP
    base = min((r.depth for r in rows), default=0)
    drawn = []
    for i, (row, vs) in enumerate(zip(rows, values, strict=True)):
        y = TOP + i * step
        bars = []
        for k, (series, v) in enumerate(zip(chart.series, vs, strict=True)):
            left, right = sorted((x(0), x(v)))
            negative = v < 0
            bars.append(
                {
                    "x": left,
                    "y": y + k * BAR,
                    "width": round(max(right - left, 0.5), 1),
                    "height": BAR - 2,
                    "color": series.color,
                    "text": _number(v),
                    "text_x": left - 3 if negative else right + 3,
                    "anchor": "end" if negative else "start",
                }
            )
        indent = "\u3000" * (row.depth - base)
        figures = zip(chart.series, vs, strict=True)
        drawn.append(
            {
                "label": indent + _short(row.name, LABEL_CHARS - (row.depth - base)),
                "tooltip": f"{row.name}（{row.unit}）: "
                + "，".join(f"{s.name} {_number(v)}" for s, v in figures),
                "text_y": y + (BAR * len(chart.series)) / 2 + 4,
                "bars": bars,
            }
        )
    hidden = len(report.rows) - len(rows)
    note = f"另有 {hidden} 个单位未显示：请按级别或单位缩小范围" if hidden > 0 else ""
    bottom = TOP + len(rows) * step
    legend = []
    at = 8
    for s in chart.series:
        legend.append({"x": at, "name": s.name, "color": s.color})
        at += 24 + 13 * len(s.name)
    period = f"{report.date_from} 至 {report.date_to}"
    text: str = _template().render(
        title=f"{chart.title}（{period}）",
        width=WIDTH,
        height=bottom + (30 if note else 12),
        legend=legend,
        rows=drawn,
        label_x=LABEL_X,
        zero_x=x(0),
        top=TOP - 4,
        bottom=max(bottom - GAP + 4, TOP),
        note=note,
    )
    return text


def _short(name: str, limit: int) -> str:
    limit = max(limit, 4)
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"
