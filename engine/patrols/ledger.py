"""The patrol ledger (巡查台账): record, read and list patrols; open cases from findings.

A patrol is recorded by its patroller, who must hold a role on the
patrolled unit's chain (the unit or an ancestor), in one transaction with
the obligations it counts for.  Reading follows the same grid permission
when a *viewer* is given: a person sees the patrols of units on whose chain
they hold a role.  A finding opens a case in one step
(:meth:`Ledger.open_case`): the case's creation event carries
``origin: {patrol: ID}`` in its payload (so the hash-chained history names
the patrol) and the ``patrol_cases`` link is written by :class:`PatrolLinks`
in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, and_, insert, or_, select

from engine.cases.ids import next_id
from engine.cases.service import CaseService, CaseView, Change
from engine.clock import Clock
from engine.errors import (
    InvalidData,
    NotPermitted,
    UnknownCase,
    UnknownPatrol,
    UnknownPerson,
)
from engine.grid import registry as grid
from engine.grid.visibility import ADMIN, Viewer, as_viewer, visible
from engine.patrols.obligations import Obligations
from engine.store import connection, transaction
from engine.store.db import read_only
from engine.store.tables import cases as cases_table
from engine.store.tables import patrol_cases, patrols, people, units

__all__ = ["Ledger", "PatrolLinks", "PatrolView", "UnknownPatrol", "day_bounds"]


@dataclass(frozen=True)
class PatrolView:
    id: str
    unit: str
    unit_name: str
    actor: str
    actor_name: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    route: list[list[float]] | None
    area_m2: float | None
    findings: str | None
    suspected: list[Any]
    attachments: list[str]
    recorded_at: dt.datetime
    cases: list[str] = field(default_factory=list)
    credited: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "unit": self.unit,
            "unit_name": self.unit_name,
            "actor": self.actor,
            "actor_name": self.actor_name,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "route": self.route,
            "area_m2": self.area_m2,
            "findings": self.findings,
            "suspected": self.suspected,
            "attachments": self.attachments,
            "recorded_at": self.recorded_at.isoformat(),
            "cases": self.cases,
            "credited": self.credited,
        }


def day_bounds(
    first: dt.date | None, last: dt.date | None, tz: str
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Local dates *first* … *last* (inclusive) → ``[start, end)`` in UTC; no bound past
    the ends of the calendar (``date.min`` / ``date.max``)."""
    zone = ZoneInfo(tz)

    def midnight(day: dt.date) -> dt.datetime | None:
        try:
            return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC)
        except OverflowError:
            return None

    start = midnight(first) if first is not None else None
    end = None
    if last is not None and last < dt.date.max:
        end = midnight(last + dt.timedelta(days=1))
    return start, end


class Ledger:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        cases: CaseService,
        obligations: Obligations,
        timezone: str,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.cases = cases
        self.obligations = obligations
        self.timezone = timezone

    # -- writing ---------------------------------------------------------
    def record(
        self,
        unit: str,
        actor: str,
        *,
        started: dt.datetime | None = None,
        ended: dt.datetime | None = None,
        route: Any = None,
        area_m2: float | None = None,
        findings: str | None = None,
        suspected: Sequence[Any] = (),
        attachments: Sequence[str] = (),
        within: Callable[[Connection, str], None] | None = None,
    ) -> PatrolView:
        """Record one patrol and count it for the obligations it fulfils; *within*, if
        given, runs in the same transaction with the new patrol's id (its photos)."""
        now = self.clock.now()
        start = started or now
        problems: dict[str, str] = {}
        if start > now:
            problems["started"] = f"{start.isoformat()} is in the future"
        if ended is not None and ended < start:
            problems["ended"] = "is before the start"
        if ended is not None and ended > now:
            problems["ended"] = f"{ended.isoformat()} is in the future"
        clean_route = _route(route, problems)
        if area_m2 is not None and (not math.isfinite(area_m2) or area_m2 < 0):
            problems["area_m2"] = "must be a number ≥ 0"
        if not isinstance(suspected, Sequence) or isinstance(suspected, str):
            problems["suspected"] = "must be a list"
        if any(not isinstance(a, str) or not a for a in attachments):
            problems["attachments"] = "must be a list of file names or URLs"
        if problems:
            raise InvalidData(problems)
        with transaction(self.engine) as conn:
            unit_row = grid.get_unit(conn, unit)
            if not unit_row.active:
                raise InvalidData({"unit": f"unit {unit!r} is no longer active"})
            held = _roles(conn, actor, unit_row, "record a patrol")
            patrol_id = next_id(conn, "P", now)
            conn.execute(
                insert(patrols).values(
                    id=patrol_id,
                    unit_code=unit,
                    actor=actor,
                    started_at=start,
                    ended_at=ended,
                    route=clean_route,
                    area_m2=area_m2,
                    findings=findings or None,
                    suspected=list(suspected),
                    attachments=list(attachments),
                    recorded_at=now,
                )
            )
            chain = {u.level: u.code for u in grid.chain(conn, unit)}
            credited = self.obligations.credit(conn, chain, held, start, now)
            if within is not None:
                within(conn, patrol_id)
            view = self._get(conn, patrol_id)
        return PatrolView(**{**view.__dict__, "credited": credited})

    def open_case(
        self,
        patrol_id: str,
        workflow: str,
        actor: str,
        data: Mapping[str, Any],
        *,
        unit: str | None = None,
        key: str | None = None,
    ) -> CaseView:
        """Open a case from a patrol's finding: one transaction, the patrol named in
        the case's creation event and linked to the case."""
        with connection(read_only(self.engine)) as conn:
            patrol = self._get(conn, patrol_id)
            where = unit or patrol.unit
            if where != patrol.unit and not grid.is_within(conn, where, patrol.unit):
                raise InvalidData({"unit": f"{where!r} is not {patrol.unit!r} or a unit below it"})
        return self.cases.create_case(
            workflow, where, actor, data, key=key, origin={"patrol": patrol_id}
        )

    def link(self, patrol_id: str, case_id: str) -> None:
        """Link an existing case to a patrol (idempotent)."""
        with transaction(self.engine) as conn:
            self._get(conn, patrol_id)
            found = conn.execute(select(cases_table.c.id).where(cases_table.c.id == case_id))
            if found.first() is None:
                raise UnknownCase(case_id)
            exists = conn.execute(
                select(patrol_cases.c.case_id).where(
                    patrol_cases.c.patrol_id == patrol_id, patrol_cases.c.case_id == case_id
                )
            ).first()
            if exists is None:
                conn.execute(insert(patrol_cases).values(patrol_id=patrol_id, case_id=case_id))

    # -- reading ---------------------------------------------------------
    def get(self, patrol_id: str, viewer: Viewer | str = ADMIN) -> PatrolView:
        """One patrol; NotPermitted when *viewer* does not see its unit
        (:mod:`engine.grid.visibility`), UnknownPatrol when there is none."""
        who = as_viewer(viewer)
        with connection(read_only(self.engine)) as conn:
            view = self._get(conn, patrol_id)
            if not who.everything:
                seen = conn.execute(
                    select(units.c.code).where(
                        units.c.code == view.unit, visible(who, units.c.path)
                    )
                ).first()
                if seen is None:
                    raise NotPermitted(
                        who.actor, "read patrols", view.unit, [], _why_not(conn, who.actor)
                    )
            return view

    def recent(
        self, since: dt.datetime, *, viewer: Viewer | str, limit: int = 100
    ) -> list[PatrolView]:
        """The patrols started at or after *since* that *viewer* reads, newest first, at
        most *limit* (the ledger as the patrol page shows it)."""
        p = patrols.c
        query = _base().where(p.started_at >= since).order_by(p.started_at.desc(), p.id.desc())
        with connection(read_only(self.engine)) as conn:
            who = as_viewer(viewer)
            if not who.everything:
                grid.get_person(conn, who.actor)
                query = query.where(visible(who, units.c.path))
            rows = conn.execute(query.limit(limit)).all()
            linked = _cases_of(conn, [r.id for r in rows])
        return [_view(r, linked.get(r.id, [])) for r in rows]

    def units_for(self, actor: str) -> list[dict[str, Any]]:
        """The active units *actor* may record a patrol for: those in its scope (the
        subtrees of the active units where it actively holds a role), in grid order,
        each ``{code, name, level, depth}``.  :meth:`record` still checks the one sent."""
        with connection(read_only(self.engine)) as conn:
            rows = conn.execute(
                select(units.c.code, units.c.name, units.c.level, units.c.depth)
                .where(units.c.active.is_(True), visible(actor, units.c.path))
                .order_by(units.c.path)
            ).all()
        return [{"code": c, "name": n, "level": lv, "depth": d} for c, n, lv, d in rows]

    def list(
        self,
        unit: str | None = None,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        *,
        viewer: Viewer | str = ADMIN,
        limit: int | None = 1000,
        after: str | None = None,
    ) -> list[PatrolView]:
        """Patrols started in the local dates ``date_from`` … ``date_to``, oldest first;
        *unit* includes the units below it; *viewer* limits to what they may read."""
        start, end = day_bounds(date_from, date_to, self.timezone)
        p = patrols.c
        query = _base().order_by(p.started_at, p.id)
        if start is not None:
            query = query.where(p.started_at >= start)
        if end is not None:
            query = query.where(p.started_at < end)
        if limit is not None:
            query = query.limit(limit)
        with connection(read_only(self.engine)) as conn:
            if after is not None:  # keyset on (started_at, id), the order of the list
                since = conn.execute(select(p.started_at).where(p.id == after)).scalar_one_or_none()
                if since is None:
                    raise InvalidData({"cursor": "not a next_cursor of this list"})
                query = query.where(
                    or_(p.started_at > since, and_(p.started_at == since, p.id > after))
                )
            if unit is not None:
                query = query.where(grid.in_subtree(units.c.path, grid.subtree_prefix(conn, unit)))
            who = as_viewer(viewer)
            if not who.everything:
                grid.get_person(conn, who.actor)  # an unknown viewer is an error, not "nothing"
                query = query.where(visible(who, units.c.path))
            rows = conn.execute(query).all()
            linked = _cases_of(conn, [r.id for r in rows])
        return [_view(r, linked.get(r.id, [])) for r in rows]

    def _get(self, conn: Connection, patrol_id: str) -> PatrolView:
        row = conn.execute(_base().where(patrols.c.id == patrol_id)).one_or_none()
        if row is None:
            raise UnknownPatrol(patrol_id)
        return _view(row, _cases_of(conn, [patrol_id]).get(patrol_id, []))


class PatrolLinks:
    """Effects hook: a case created with ``origin: {patrol: ID}`` is linked to the patrol."""

    def on_change(self, conn: Connection, change: Change) -> dict[str, Any]:
        if change.from_state is not None or change.transition is not None:
            return {}
        origin = change.payload.get("origin")
        if not isinstance(origin, Mapping) or "patrol" not in origin:
            return {}
        patrol_id = str(origin["patrol"])
        found = conn.execute(select(patrols.c.id).where(patrols.c.id == patrol_id)).first()
        if found is None:
            raise InvalidData({"origin": f"unknown patrol {patrol_id!r}"})
        conn.execute(insert(patrol_cases).values(patrol_id=patrol_id, case_id=change.case_id))
        return {"patrol": patrol_id}


# ---------------------------------------------------------------- helpers


def _base() -> sa.Select[Any]:
    return (
        select(
            patrols,
            units.c.name.label("unit_name"),
            people.c.name.label("actor_name"),
        )
        .join(units, units.c.code == patrols.c.unit_code)
        .join(people, people.c.id == patrols.c.actor)
    )


def _view(row: Any, cases: list[str]) -> PatrolView:
    return PatrolView(
        id=row.id,
        unit=row.unit_code,
        unit_name=row.unit_name,
        actor=row.actor,
        actor_name=row.actor_name,
        started_at=row.started_at,
        ended_at=row.ended_at,
        route=row.route,
        area_m2=row.area_m2,
        findings=row.findings,
        suspected=list(row.suspected or []),
        attachments=list(row.attachments or []),
        recorded_at=row.recorded_at,
        cases=cases,
    )


def _cases_of(conn: Connection, ids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        rows = conn.execute(
            select(patrol_cases.c.patrol_id, patrol_cases.c.case_id)
            .where(patrol_cases.c.patrol_id.in_(chunk))
            .order_by(patrol_cases.c.case_id)
        )
        for patrol_id, case_id in rows:
            out.setdefault(patrol_id, []).append(case_id)
    return out


def _roles(conn: Connection, actor: str, unit: grid.UnitRow, action: str) -> set[str]:
    try:
        person = grid.get_person(conn, actor)
    except UnknownPerson:
        raise NotPermitted(actor, action, unit.code, [], "unknown person") from None
    if not person.active:
        raise NotPermitted(actor, action, unit.code, [], "the person has been deactivated")
    held = grid.roles_on_path(conn, actor, unit.path)
    if not held:
        raise NotPermitted(actor, action, unit.code, [], "it holds no role on this unit's chain")
    return held


def _why_not(conn: Connection, actor: str) -> str:
    try:
        person = grid.get_person(conn, actor)
    except UnknownPerson:
        return "unknown person"
    if not person.active:
        return "the person has been deactivated"
    return "it holds no role on this unit's chain"


def _route(value: Any, problems: dict[str, str]) -> list[list[float]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        problems["route"] = "must be a list of [lng, lat] points"
        return None
    points: list[list[float]] = []
    for i, point in enumerate(value):
        ok = (
            isinstance(point, (list, tuple))
            and len(point) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in point)
            and -180 <= point[0] <= 180
            and -90 <= point[1] <= 90
        )
        if not ok:
            problems["route"] = f"point {i} is not [lng, lat] in degrees: {point!r}"
            return None
        points.append([float(point[0]), float(point[1])])
    return points or None
