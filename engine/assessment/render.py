"""The assessment report in table, JSON, CSV, XLSX and HTML form."""

from __future__ import annotations

import json
from typing import Any

from engine.assessment.config import COMPONENTS
from engine.assessment.report import LEVEL_TITLES, Report, UnitRow
from engine.tabular import csv_text, html_page, text_table, xlsx_bytes

__all__ = ["COMPONENT_TITLES", "FORMATS", "render"]

FORMATS = ("table", "json", "csv", "xlsx", "html")
COMPONENT_TITLES = {
    "missed_violation": "漏查",
    "missed_patrol": "漏巡",
    "overdue": "超时",
    "escalation": "上报",
    "stop_late_share": "制止不及时",
    "report_late_share": "报告不及时",
    "verify_late_share": "核实不及时",
    "patrol_shortfall": "巡田不足",
}
_FULL = (
    "单位编码",
    "单位",
    "级别",
    "案件数",
    "按时制止率(%)",
    "按时制止/应制止",
    "按时报告率(%)",
    "按时报告/应报告",
    "按时核实率(%)",
    "按时核实/应核实",
    "制止用时中位数(小时)",
    "报告用时中位数(小时)",
    "核实用时中位数(小时)",
    "超时次数",
    "超时环节",
    "逐级上报次数",
    "巡查次数",
    "应巡查次数",
    "计入次数",
    "巡田率(%)",
    "漏巡周期",
    "图斑/调查发现",
    "网格漏查",
    "收到督办",
    *(f"分项·{COMPONENT_TITLES[c]}" for c in COMPONENTS),
    "得分",
)


def _pct(value: float | None) -> float | None:
    return round(value * 100, 1) if value is not None else None


def _full_row(r: UnitRow) -> list[Any]:
    return [
        r.unit,
        r.name,
        LEVEL_TITLES.get(r.level, r.level),
        r.cases,
        _pct(r.share("stop")),
        f"{r.on_time['stop']}/{r.due['stop']}",
        _pct(r.share("report")),
        f"{r.on_time['report']}/{r.due['report']}",
        _pct(r.share("verify")),
        f"{r.on_time['verify']}/{r.due['verify']}",
        r.median_hours["stop"],
        r.median_hours["report"],
        r.median_hours["verify"],
        r.overdue,
        "；".join(f"{s}:{n}" for s, n in sorted(r.overdue_by_state.items())),
        r.escalations,
        r.patrols_done,
        r.patrols_required,
        r.patrols_counted,
        _pct(r.patrol_rate),
        r.missed_patrols,
        r.findings,
        r.missed,
        r.supervisions,
        *(r.components[c]["points"] for c in COMPONENTS),
        r.score,
    ]


def _title(report: Report) -> str:
    scope = f"（{report.unit}）" if report.unit else ""
    return f"耕地保护网格化监管考评{scope} {report.date_from} 至 {report.date_to}"


def _note(report: Report) -> str:
    weights = "，".join(f"{COMPONENT_TITLES[c]} {report.config.weights[c]:+g}" for c in COMPONENTS)
    return f"得分 = {report.config.base:g} + Σ 权重 × 分项。权重：{weights}。"


def _table(report: Report) -> str:
    headers = (
        "单位",
        "案件",
        "按时制止",
        "按时报告",
        "制止h",
        "报告h",
        "核实h",
        "超时",
        "上报",
        "巡查/应巡",
        "巡田率",
        "漏巡",
        "图斑",
        "漏查",
        "得分",
    )
    base = min((r.depth for r in report.rows), default=0)

    def pct(v: float | None) -> str | None:
        return f"{v * 100:.1f}%" if v is not None else None

    rows = [
        [
            "  " * (r.depth - base) + r.name,
            r.cases,
            pct(r.share("stop")),
            pct(r.share("report")),
            r.median_hours["stop"],
            r.median_hours["report"],
            r.median_hours["verify"],
            r.overdue,
            r.escalations,
            f"{r.patrols_done}/{r.patrols_required}",
            pct(r.patrol_rate),
            r.missed_patrols,
            r.findings,
            r.missed,
            f"{r.score:.2f}",
        ]
        for r in report.rows
    ]
    return f"{_title(report)}\n\n{text_table(headers, rows)}\n\n{_note(report)}\n"


def render(report: Report, fmt: str) -> str | bytes:
    """The report as text (table, json, csv, html) or bytes (xlsx)."""
    if fmt == "json":
        return json.dumps(report.as_dicts(), ensure_ascii=False, indent=2) + "\n"
    if fmt == "table":
        return _table(report)
    rows = [_full_row(r) for r in report.rows]
    if fmt == "csv":
        return csv_text(_FULL, rows)
    if fmt == "xlsx":
        return xlsx_bytes(_FULL, rows, title="考评")
    if fmt == "html":
        depth = [r.depth for r in report.rows]
        base = min(depth, default=0)
        shifted = [rows_[1:] for rows_ in rows]
        headers = _FULL[1:]
        return html_page(
            _title(report),
            headers,
            shifted,
            note=_note(report),
            indent=[d - base for d in depth],
        )
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
