"""The patrol ledger (巡查台账) as a district prints it: one row per patrol, Chinese titles."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from engine.patrols.ledger import PatrolView
from engine.tabular import csv_text, xlsx_bytes

__all__ = ["HEADERS", "ledger_csv", "ledger_rows", "ledger_xlsx"]

HEADERS = (
    "序号",
    "巡查编号",
    "巡查单位",
    "单位编码",
    "巡查人",
    "开始时间",
    "结束时间",
    "时长（分钟）",
    "巡查路线（点数）",
    "巡查面积（平方米）",
    "发现情况",
    "疑似违法",
    "附件",
    "关联案件",
)


def _local(moment: dt.datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""


def _suspected(items: Sequence[Any]) -> str:
    return "；".join(i if isinstance(i, str) else json.dumps(i, ensure_ascii=False) for i in items)


def ledger_rows(patrols: Sequence[PatrolView], timezone: str) -> list[list[Any]]:
    zone = ZoneInfo(timezone)
    rows: list[list[Any]] = []
    for n, p in enumerate(patrols, start=1):
        minutes = round((p.ended_at - p.started_at).total_seconds() / 60) if p.ended_at else None
        rows.append(
            [
                n,
                p.id,
                p.unit_name,
                p.unit,
                p.actor_name,
                _local(p.started_at, zone),
                _local(p.ended_at, zone),
                minutes,
                len(p.route) if p.route else None,
                p.area_m2,
                p.findings or "",
                _suspected(p.suspected),
                "；".join(p.attachments),
                "；".join(p.cases),
            ]
        )
    return rows


def ledger_csv(patrols: Sequence[PatrolView], timezone: str) -> str:
    return csv_text(HEADERS, ledger_rows(patrols, timezone))


def ledger_xlsx(patrols: Sequence[PatrolView], timezone: str) -> bytes:
    return xlsx_bytes(HEADERS, ledger_rows(patrols, timezone), title="巡查台账")
