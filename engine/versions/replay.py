"""What-if before deploying: replay closed cases against another version's deadlines.

``gengbao workflow migrate … --dry-run --replay DAYS`` reads the history of the
workflow's cases closed in the last DAYS days and, for every stay in a state
(from the entry that moved the case into it to the one that moved it out), asks
two questions with today's working-day calendar: did the stay outlast the
deadline of the version the case ran on, and would it have outlasted the
target version's (the state mapped by ``--map``)?  The answer, per state and
unit and in total, shows an administrator what a shorter deadline would have
meant on the grid, before it reaches a running case.  It reads only.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from engine.cases.catalog import Catalog
from engine.definitions import Workflow
from engine.grid.visibility import ADMIN, Viewer, visible
from engine.store.tables import cases, history, units
from engine.timers.schedule import TimerSchedule
from engine.versions.deadlines import deadline_from

__all__ = ["Replay", "ReplayLine", "replay_closed"]


@dataclass(frozen=True, kw_only=True)
class ReplayLine:
    """One (state, unit): its stays, and how many outlasted each version's deadline."""

    state: str
    unit: str
    stays: int
    overdue_was: int  # under the version the case ran on
    overdue_would_be: int  # under the target version

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "unit": self.unit,
            "stays": self.stays,
            "overdue_was": self.overdue_was,
            "overdue_would_be": self.overdue_would_be,
        }


@dataclass(frozen=True, kw_only=True)
class Replay:
    days: int
    since: dt.datetime
    cases: int  # closed cases replayed
    overdue_cases_was: int  # cases with at least one stay over its deadline
    overdue_cases_would_be: int
    lines: tuple[ReplayLine, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "since": self.since.isoformat(),
            "cases": self.cases,
            "overdue_cases_was": self.overdue_cases_was,
            "overdue_cases_would_be": self.overdue_cases_would_be,
            "lines": [line.as_dict() for line in self.lines],
        }


@dataclass(frozen=True)
class _Stay:
    state: str
    definition_id: int
    entered: dt.datetime
    left: dt.datetime


def replay_closed(
    conn: Connection,
    catalog: Catalog,
    schedule: TimerSchedule,
    *,
    viewer: Viewer = ADMIN,
    workflow: str,
    target: Workflow,
    state_map: Mapping[str, str],
    days: int,
    now: dt.datetime,
) -> Replay:
    since = now - dt.timedelta(days=days)
    c, h = cases.c, history.c
    query = select(c.id, c.unit_code, c.data).where(
        c.workflow == workflow, c.closed_at.is_not(None), c.closed_at >= since
    )
    if not viewer.everything:  # only the viewer's units
        query = query.where(
            c.unit_code.in_(select(units.c.code).where(visible(viewer, units.c.path)))
        )
    closed = conn.execute(query.order_by(c.id)).all()
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    was_cases = would_cases = 0
    for case in closed:
        entries = conn.execute(
            select(h.at, h.from_state, h.to_state, h.definition_id)
            .where(h.case_id == case.id)
            .order_by(h.seq)
        ).all()
        was_any = would_any = False
        for stay in _stays(entries):
            own = catalog.compiled(conn, stay.definition_id).workflow
            common = {"case_id": case.id, "unit": case.unit_code, "data": case.data}
            was = deadline_from(
                conn, schedule, **common, wf=own, state=stay.state, entered_at=stay.entered
            )
            would = deadline_from(
                conn,
                schedule,
                **common,
                wf=target,
                state=state_map.get(stay.state, stay.state),
                entered_at=stay.entered,
            )
            line = counts[(stay.state, case.unit_code)]
            line[0] += 1
            if was is not None and stay.left > was:
                line[1] += 1
                was_any = True
            if would is not None and stay.left > would:
                line[2] += 1
                would_any = True
        was_cases += was_any
        would_cases += would_any
    lines = tuple(
        ReplayLine(state=state, unit=unit, stays=n[0], overdue_was=n[1], overdue_would_be=n[2])
        for (state, unit), n in sorted(counts.items())
    )
    return Replay(
        days=days,
        since=since,
        cases=len(closed),
        overdue_cases_was=was_cases,
        overdue_cases_would_be=would_cases,
        lines=lines,
    )


def _stays(entries: Sequence[Any]) -> list[_Stay]:
    """Each stay in a state: from the entry that moved the case in to the one that
    moved it out (entries that move no state — notes, signatures — are inside it)."""
    stays: list[_Stay] = []
    current: Any = None
    for entry in entries:
        if current is not None and entry.to_state == current.to_state:
            continue
        if current is not None:
            stays.append(_Stay(current.to_state, current.definition_id, current.at, entry.at))
        current = entry
    return stays
