"""The case ledger (案件台账): one row per case, Chinese titles, CSV or XLSX."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from engine.cases.records import CaseView
from engine.tabular import csv_text, xlsx_bytes

__all__ = ["HEADERS", "case_rows", "cases_csv", "cases_xlsx"]

HEADERS = (
    "序号",
    "案件编号",
    "流程",
    "版本",
    "当前环节",
    "环节名称",
    "所属网格",
    "督办级别",
    "发现时间",
    "进入环节时间",
    "销号时间",
    "状态",
    "案件信息",
)


def _local(moment: dt.datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""


def case_rows(views: Sequence[CaseView], timezone: str) -> list[list[Any]]:
    zone = ZoneInfo(timezone)
    return [
        [
            n,
            v.id,
            v.workflow,
            v.version,
            v.state,
            v.state_title,
            v.unit,
            v.escalation_level,
            _local(v.opened_at, zone),
            _local(v.state_entered_at, zone),
            _local(v.closed_at, zone),
            "办理中" if v.open else "已结束",
            json.dumps(v.data, ensure_ascii=False, sort_keys=True),
        ]
        for n, v in enumerate(views, start=1)
    ]


def cases_csv(views: Sequence[CaseView], timezone: str) -> str:
    return csv_text(HEADERS, case_rows(views, timezone))


def cases_xlsx(views: Sequence[CaseView], timezone: str) -> bytes:
    return xlsx_bytes(HEADERS, case_rows(views, timezone), title="案件台账")
