"""What readers see of a countersign's parties (``case parties``, ``GET …/parties``,
``case show``): role, title, status, who acted when, the deadline in the workflow's
time zone, and whether a pending party is late."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from engine.cases.service import CaseService
from engine.definitions import Workflow
from engine.definitions.model import Countersign
from engine.grid.visibility import Viewer
from engine.store import connection
from engine.store.db import read_only
from engine.store.tables import case_parties
from engine.store.tables import cases as cases_table

__all__ = ["PartyView", "read_parties"]

_p = case_parties.c


@dataclass(frozen=True, kw_only=True)
class PartyView:
    """One party of a countersign as readers see it."""

    id: int
    state: str
    role: str
    title: str
    status: str  # pending | signed | refused | cancelled
    actor: str | None
    acted_at: dt.datetime | None
    note: str | None
    deadline: dt.datetime | None  # in the workflow's time zone
    late: bool  # pending past its deadline

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "role": self.role,
            "title": self.title,
            "status": self.status,
            "actor": self.actor,
            "acted_at": self.acted_at.isoformat() if self.acted_at else None,
            "note": self.note,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "late": self.late,
        }


def read_parties(
    cases: CaseService, case_id: str, viewer: Viewer | str, default_timezone: str
) -> list[PartyView]:
    """The parties of the case's latest countersign, in the order the workflow lists them."""
    with connection(read_only(cases.engine)) as conn:
        cases._exists(conn, case_id, viewer)
        latest = select(func.max(_p.entered_seq)).where(_p.case_id == case_id).scalar_subquery()
        rows = conn.execute(
            select(case_parties, _definition_of(case_id))
            .where(_p.case_id == case_id, _p.entered_seq == latest)
            .order_by(_p.id)
        ).all()
        if not rows:
            return []
        wf = cases.catalog.compiled(conn, rows[0].definition_id).workflow
    tz = ZoneInfo(wf.timezone or default_timezone)
    now = cases.clock.now()
    out = []
    for r in rows:
        c = _countersign(wf, r.state)
        spec = c.party(r.role) if c is not None else None
        out.append(
            PartyView(
                id=r.id,
                state=r.state,
                role=r.role,
                title=spec.label if spec is not None else r.role,
                status=r.status,
                actor=r.actor,
                acted_at=r.acted_at.astimezone(tz) if r.acted_at else None,
                note=r.note,
                deadline=r.deadline_at.astimezone(tz) if r.deadline_at else None,
                late=r.status == "pending" and r.deadline_at is not None and now > r.deadline_at,
            )
        )
    return out


def _definition_of(case_id: str) -> Any:
    return (
        select(cases_table.c.definition_id)
        .where(cases_table.c.id == case_id)
        .scalar_subquery()
        .label("definition_id")
    )


def _countersign(wf: Workflow, state: str) -> Countersign | None:
    return wf.state(state).countersign if wf.has_state(state) else None
