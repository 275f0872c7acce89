"""The accountability register (约谈/问责台账): who let what go overdue, over a period.

For the local dates *from* … *to* (the settings' time zone), one line per unit
and, under it, one per person, of what that unit's cases record:

- **overdue facts** by duty (``state`` = a state's own deadline; ``party``,
  ``transfer``, ``ack``, ``supervision``), recorded in the period; the person
  is the fact's ``person_id``, else, for a state deadline, the assignee of
  that state visit (``case_assignments``) when there was one;
- the **highest rung** reached (the fact's level: 0 the deadline passed,
  1 … the escalation rungs);
- **supervisions received** (issued in the period, on the unit's cases) and of
  them those still **unanswered** (open, and the case has not moved on since);
- **transfers returned** (answered ``returned`` in the period): counted against
  the receiving unit that returned them (and the person who did), and listed
  for the unit that sent them;
- **unacknowledged notifications**: deliveries sent to a person in the period
  with no ``notification_reads`` row, on the unit of their case.

Each unit's line counts its own cases (no roll-up: the register names who is
answerable, the assessment report rolls figures up the grid).  Every number is
traceable: a line carries the case ids and the references behind it
(``fact:ID``, ``supervision:ID``, ``transfer:ID``, ``delivery:ID``, each with
its case).  Counts are SQL aggregates; the references come from the same
filters.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, case, exists, func, literal, select
from sqlalchemy.sql import ColumnElement

from engine.errors import InvalidDateRange
from engine.patrols.ledger import day_bounds
from engine.store import connection
from engine.store.db import read_only
from engine.store.tables import (
    case_assignments,
    case_transfers,
    cases,
    deliveries,
    notification_reads,
    notifications,
    overdue_facts,
    people,
    supervisions,
    units,
)
from engine.tabular import csv_text, html_page, text_table, xlsx_bytes

__all__ = ["DUTIES", "FORMATS", "Line", "Register", "accountability", "render"]

DUTIES = ("state", "party", "transfer", "ack", "supervision")
DUTY_TITLES = {
    "state": "环节超时",
    "party": "会签超时",
    "transfer": "移送超时",
    "ack": "签收超时",
    "supervision": "督办超时",
}
FORMATS = ("table", "json", "csv", "xlsx", "html")


@dataclass
class Line:
    unit: str
    unit_name: str
    level: str
    person: str | None = None  # None: the unit's own line
    person_name: str = ""
    overdue: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DUTIES, 0))
    top_level: int | None = None  # highest rung reached (0: deadline passed)
    supervisions: int = 0
    unanswered: int = 0
    returned: int = 0  # transfers this unit (person) received and returned
    returned_sent: int = 0  # transfers this unit sent that came back
    unacknowledged: int = 0
    cases: set[str] = field(default_factory=set)
    refs: list[str] = field(default_factory=list)

    @property
    def overdue_total(self) -> int:
        return sum(self.overdue.values())

    @property
    def empty(self) -> bool:
        return not self.refs

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "unit_name": self.unit_name,
            "level": self.level,
            "person": self.person,
            "person_name": self.person_name,
            "overdue": dict(self.overdue),
            "overdue_total": self.overdue_total,
            "top_level": self.top_level,
            "supervisions": self.supervisions,
            "unanswered": self.unanswered,
            "transfers_returned": self.returned,
            "transfers_returned_sent": self.returned_sent,
            "unacknowledged": self.unacknowledged,
            "cases": sorted(self.cases),
            "refs": list(self.refs),
        }


@dataclass
class Register:
    date_from: dt.date
    date_to: dt.date
    level: str | None
    lines: list[Line]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [line.as_dict() for line in self.lines]


def _period(column: Any, t0: dt.datetime | None, t1: dt.datetime | None) -> ColumnElement[bool]:
    parts = [column.is_not(None)]
    if t0 is not None:
        parts.append(column >= t0)
    if t1 is not None:
        parts.append(column < t1)
    return and_(*parts)


class _Lines:
    def __init__(self, names: dict[str, tuple[str, str]], who: dict[str, str]) -> None:
        self.names = names
        self.who = who
        self.lines: dict[tuple[str, str | None], Line] = {}

    def get(self, unit: str, person: str | None = None) -> Line:
        key = (unit, person)
        if key not in self.lines:
            name, level = self.names.get(unit, (unit, ""))
            self.lines[key] = Line(
                unit=unit,
                unit_name=name,
                level=level,
                person=person,
                person_name=self.who.get(person, "") if person else "",
            )
        return self.lines[key]

    def both(self, unit: str, person: str | None) -> Iterable[Line]:
        yield self.get(unit)
        if person:
            yield self.get(unit, person)


def accountability(
    engine: Engine,
    date_from: dt.date,
    date_to: dt.date,
    timezone: str,
    *,
    level: str | None = None,
) -> Register:
    """The register over the local dates *date_from* … *date_to* (see the module)."""
    if date_to < date_from:
        raise InvalidDateRange(date_from, date_to)
    t0, t1 = day_bounds(date_from, date_to, timezone)
    with connection(read_only(engine)) as conn:
        names = {
            r.code: (r.name, r.level)
            for r in conn.execute(select(units.c.code, units.c.name, units.c.level))
        }
        who = {r.id: r.name for r in conn.execute(select(people.c.id, people.c.name))}
        lines = _Lines(names, who)

        # -- overdue facts, by duty and person -----------------------------------
        f = overdue_facts.c
        a = case_assignments.c
        assignee = (
            select(a.assignee)
            .where(
                a.case_id == f.case_id,
                a.state == f.state,
                a.assignee.is_not(None),
                a.offered_at <= f.deadline_at,
            )
            .order_by(a.entered_seq.desc())
            .limit(1)
            .scalar_subquery()
        )
        person = case((f.person_id.is_not(None), f.person_id), else_=assignee)
        duty = func.coalesce(f.duty, literal("state"))
        in_period = _period(f.recorded_at, t0, t1)
        facts = select(
            f.id, f.case_id, f.unit_code, duty.label("duty"), f.level, person.label("person")
        ).where(in_period)
        counted = facts.subquery()
        c = counted.c
        for r in conn.execute(
            select(c.unit_code, c.person, c.duty, func.count(), func.max(c.level)).group_by(
                c.unit_code, c.person, c.duty
            )
        ):
            for line in lines.both(r.unit_code, r.person):
                key = r.duty if r.duty in line.overdue else "state"
                line.overdue[key] += r[3]
                top = r[4]
                line.top_level = top if line.top_level is None else max(line.top_level, top)
        for r in conn.execute(facts.order_by(f.id)):
            for line in lines.both(r.unit_code, r.person):
                line.cases.add(r.case_id)
                line.refs.append(f"fact:{r.id}@{r.case_id}")

        # -- supervisions received, and unanswered ---------------------------------
        s = supervisions.c
        unanswered = and_(
            s.status == "open",
            cases.c.closed_at.is_(None),
            cases.c.state == s.state,
            cases.c.state_entered_at <= s.issued_at,
        )
        issued = _period(s.issued_at, t0, t1)
        joined = supervisions.join(cases, cases.c.id == s.case_id)
        for r in conn.execute(
            select(s.unit_code, func.count(), func.sum(case((unanswered, 1), else_=0)))
            .select_from(joined)
            .where(issued)
            .group_by(s.unit_code)
        ):
            line = lines.get(r.unit_code)
            line.supervisions += r[1]
            line.unanswered += int(r[2] or 0)
        for r in conn.execute(
            select(s.id, s.case_id, s.unit_code, unanswered.label("waiting"))
            .select_from(joined)
            .where(issued)
            .order_by(s.id)
        ):
            line = lines.get(r.unit_code)
            line.cases.add(r.case_id)
            line.refs.append(
                f"supervision:{r.id}@{r.case_id}{' (unanswered)' if r.waiting else ''}"
            )

        # -- transfers returned --------------------------------------------------
        t = case_transfers.c
        returned = and_(t.status == "returned", _period(t.answered_at, t0, t1))
        for r in conn.execute(
            select(t.to_unit, t.answered_by, func.count())
            .where(returned)
            .group_by(t.to_unit, t.answered_by)
        ):
            for line in lines.both(r.to_unit, r.answered_by):
                line.returned += r[2]
        for r in conn.execute(
            select(t.from_unit, func.count()).where(returned).group_by(t.from_unit)
        ):
            lines.get(r.from_unit).returned_sent += r[1]
        for r in conn.execute(
            select(t.id, t.case_id, t.from_unit, t.to_unit, t.answered_by)
            .where(returned)
            .order_by(t.id)
        ):
            ref = f"transfer:{r.id}@{r.case_id}"
            for line in lines.both(r.to_unit, r.answered_by):
                line.cases.add(r.case_id)
                line.refs.append(f"{ref} (returned)")
            sender = lines.get(r.from_unit)
            sender.cases.add(r.case_id)
            sender.refs.append(f"{ref} (came back)")

        # -- notifications sent to a person and never acknowledged -----------------
        d, n = deliveries.c, notifications.c
        read = exists().where(
            notification_reads.c.notification_id == d.notification_id,
            notification_reads.c.person_id == d.person_id,
        )
        unit_of = func.coalesce(cases.c.unit_code, n.unit_code)
        unread = (
            select(d.id, d.person_id, n.case_id, unit_of.label("unit"))
            .select_from(
                deliveries.join(notifications, notifications.c.id == d.notification_id).outerjoin(
                    cases, cases.c.id == n.case_id
                )
            )
            .where(d.person_id.is_not(None), d.status == "sent", _period(d.sent_at, t0, t1), ~read)
        )
        counted_unread = unread.subquery()
        u = counted_unread.c
        for r in conn.execute(
            select(u.unit, u.person_id, func.count())
            .where(u.unit.is_not(None))
            .group_by(u.unit, u.person_id)
        ):
            for line in lines.both(r.unit, r.person_id):
                line.unacknowledged += r[2]
        for r in conn.execute(unread.order_by(d.id)):
            if r.unit is None:
                continue
            for line in lines.both(r.unit, r.person_id):
                if r.case_id:
                    line.cases.add(r.case_id)
                line.refs.append(f"delivery:{r.id}@{r.case_id or r.unit}")

    out = [x for x in lines.lines.values() if not x.empty]
    if level is not None:
        out = [x for x in out if x.level == level]
    depth = {code: path_depth for code, path_depth in _depths(names)}
    out.sort(key=lambda x: (depth.get(x.unit, 9), x.unit, x.person is not None, x.person or ""))
    return Register(date_from, date_to, level, out)


def _depths(names: dict[str, tuple[str, str]]) -> Iterable[tuple[str, int]]:
    order = {"district": 0, "town": 1, "village": 2, "group": 3}
    for code, (_, level) in names.items():
        yield code, order.get(level, 9)


# -- rendering -------------------------------------------------------------------

_HEADERS = (
    "单位编码",
    "单位",
    "级别",
    "人员编号",
    "人员",
    *(DUTY_TITLES[d] for d in DUTIES),
    "超时合计",
    "最高上报级",
    "收到督办",
    "督办未回复",
    "退回移送",
    "移送被退回",
    "通知未确认",
    "案件",
    "依据",
)
_LEVELS = {"district": "区", "town": "镇街", "village": "村社区", "group": "组社"}


def _row(x: Line) -> list[Any]:
    return [
        x.unit,
        x.unit_name,
        _LEVELS.get(x.level, x.level),
        x.person or "",
        x.person_name,
        *(x.overdue[d] for d in DUTIES),
        x.overdue_total,
        x.top_level if x.top_level is not None else "",
        x.supervisions,
        x.unanswered,
        x.returned,
        x.returned_sent,
        x.unacknowledged,
        " ".join(sorted(x.cases)),
        " ".join(x.refs),
    ]


def _title(register: Register) -> str:
    scope = f"（{_LEVELS.get(register.level, register.level)}级）" if register.level else ""
    return f"耕地保护约谈问责台账{scope} {register.date_from} 至 {register.date_to}"


def _details(register: Register) -> list[str]:
    out = []
    for x in register.lines:
        who = f"{x.unit_name} {x.person_name or x.person}" if x.person else x.unit_name
        out.append(f"{who}: {', '.join(x.refs)}")
    return out


def render(register: Register, fmt: str) -> str | bytes:
    """The register as text (table, json, csv, html) or bytes (xlsx)."""
    if fmt == "json":
        body = {
            "from": register.date_from.isoformat(),
            "to": register.date_to.isoformat(),
            "level": register.level,
            "lines": register.as_dicts(),
        }
        return json.dumps(body, ensure_ascii=False, indent=2) + "\n"
    rows = [_row(x) for x in register.lines]
    if fmt == "csv":
        return csv_text(_HEADERS, rows)
    if fmt == "xlsx":
        return xlsx_bytes(_HEADERS, rows, title="问责台账")
    if fmt == "table":
        headers = ("单位/人员", "超时", "最高级", "督办", "未回复", "退回", "被退回", "未确认")
        table = [
            [
                ("  " + (x.person_name or x.person or "")) if x.person else x.unit_name,
                x.overdue_total,
                x.top_level if x.top_level is not None else "",
                x.supervisions,
                x.unanswered,
                x.returned,
                x.returned_sent,
                x.unacknowledged,
            ]
            for x in register.lines
        ]
        details = "\n".join(_details(register)) or "（无）"
        return f"{_title(register)}\n\n{text_table(headers, table)}\n\n依据 Details:\n{details}\n"
    if fmt == "html":
        page = html_page(
            _title(register),
            _HEADERS[:-1],
            [r[:-1] for r in rows],
            note="依据：" + "；".join(_details(register)) if register.lines else "",
        )
        return page
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
