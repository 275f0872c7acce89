"""The overdue board (超期预警): open, due-soon and overdue cases per unit, for a viewer.

For each active unit the viewer sees (:func:`engine.grid.visibility.visible`: the
units where it holds a role, and everything below), the board counts the open cases
of the unit's subtree in three buckets:

=========  =================================================================
open       every open case (``closed_at`` is NULL)
due_soon   open, its current deadline (``cases.deadline_at``) not passed yet but
           within the state's reminder window: the longest ``remind`` of the
           state's deadline (a working-day reminder counts N × 24 h), or
           ``board.due_soon`` (settings, default 24 h) when the state has none
overdue    open, its deadline passed (``deadline_at < now``: the rule of
           ``case list --overdue``)
=========  =================================================================

A case with no current deadline is open only.  The counts are one ``GROUP BY
unit_code`` statement over the cases in scope (the reminder window of each
(definition, state) is a ``CASE`` in it); the per-unit rows are then summed up the
tree in Python — one addition per (unit with cases, ancestor), never one per case.
:meth:`Board.cases` lists the cases behind one cell (a unit and a bucket), paged in
SQL by (deadline, id).  Another unit's cases are never counted: scope, filters
and buckets are all in the statements' ``WHERE``.  A case counts where it *is*
(its ``unit_code``): one sent to the viewer's unit and not yet accepted (移送) is on
the viewer's tasks, not on its board, until the transfer is accepted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Connection, Engine, select

from engine.cases.catalog import Catalog
from engine.clock import Clock
from engine.definitions import Workflow
from engine.errors import InvalidData, UnknownUnit
from engine.grid import registry as grid
from engine.grid.visibility import ADMIN, Viewer, as_viewer, visible
from engine.store import connection
from engine.store.db import read_only
from engine.store.tables import UTCDateTime, cases, units

__all__ = [
    "BUCKETS",
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "Board",
    "BoardCase",
    "BoardFilter",
    "BoardView",
    "CasePage",
    "UnitCounts",
    "reminder_window",
]

BUCKETS = ("open", "due_soon", "overdue")
DEFAULT_PAGE = 50
MAX_PAGE = 1000


def reminder_window(wf: Workflow, state: str) -> int | None:
    """Seconds before the deadline of *state* that its first reminder is due (the
    longest ``remind``); None when the state declares no reminder before its deadline."""
    if not wf.has_state(state):
        return None
    deadline = wf.state(state).deadline
    if deadline is None or not deadline.remind:
        return None
    return max(r.seconds for r in deadline.remind)


@dataclass(frozen=True, kw_only=True)
class BoardFilter:
    """What the board counts: cases of *workflow*, in *state*, at or below *unit*."""

    workflow: str | None = None
    state: str | None = None
    unit: str | None = None


@dataclass(kw_only=True)
class UnitCounts:
    """One row of the board: a unit and the counts of its subtree's open cases."""

    unit: str
    name: str
    level: str
    parent: str | None
    path: str
    depth: int  # below the board's top units (0: a top unit)
    open: int = 0
    due_soon: int = 0
    overdue: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "name": self.name,
            "level": self.level,
            "parent": self.parent,
            "depth": self.depth,
            "open": self.open,
            "due_soon": self.due_soon,
            "overdue": self.overdue,
        }


@dataclass(frozen=True, kw_only=True)
class BoardView:
    at: dt.datetime
    filter: BoardFilter
    due_soon_default_seconds: int
    units: list[UnitCounts] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "workflow": self.filter.workflow,
            "state": self.filter.state,
            "unit": self.filter.unit,
            "due_soon_default_seconds": self.due_soon_default_seconds,
            "units": [u.as_dict() for u in self.units],
        }


@dataclass(frozen=True, kw_only=True)
class BoardCase:
    id: str
    workflow: str
    state: str
    state_title: str
    unit: str
    unit_name: str
    bucket: str  # overdue | due_soon | open
    deadline_at: dt.datetime | None
    deadline_local: str | None
    seconds_left: int | None  # negative: overdue
    escalation_level: int
    opened_at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workflow": self.workflow,
            "state": self.state,
            "state_title": self.state_title,
            "unit": self.unit,
            "unit_name": self.unit_name,
            "bucket": self.bucket,
            "deadline_at": self.deadline_at.isoformat() if self.deadline_at else None,
            "deadline_local": self.deadline_local,
            "seconds_left": self.seconds_left,
            "escalation_level": self.escalation_level,
            "opened_at": self.opened_at.isoformat(),
        }


@dataclass(frozen=True, kw_only=True)
class CasePage:
    unit: str
    bucket: str
    items: list[BoardCase]
    next_cursor: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "bucket": self.bucket,
            "items": [c.as_dict() for c in self.items],
            "next_cursor": self.next_cursor,
        }


class Board:
    """The board of one database; every read takes the viewer and scopes its SQL by it."""

    def __init__(
        self,
        engine: Engine,
        catalog: Catalog,
        clock: Clock,
        timezone: str,
        *,
        due_soon_seconds: int = 86400,
    ) -> None:
        self.engine = engine
        self.catalog = catalog
        self.clock = clock
        self.timezone = timezone
        self.due_soon_seconds = due_soon_seconds

    def board(self, f: BoardFilter | None = None, *, viewer: Viewer | str = ADMIN) -> BoardView:
        """Counts per unit of *viewer*'s scope (under ``f.unit`` when given)."""
        f = f or BoardFilter()
        who = as_viewer(viewer)
        now = self.clock.now()
        with connection(read_only(self.engine)) as conn:
            prefix = self._scope(conn, who, f.unit)
            rows = self._units(conn, who, prefix)
            scope = self._where(who, f, prefix)
            due_soon = self._due_soon(conn, scope, now)
            overdue = cases.c.deadline_at < now
            counts = conn.execute(
                select(
                    units.c.path,
                    sa.func.count().label("open"),
                    sa.func.sum(sa.case((due_soon, 1), else_=0)).label("due_soon"),
                    sa.func.sum(sa.case((overdue, 1), else_=0)).label("overdue"),
                )
                .select_from(cases.join(units, units.c.code == cases.c.unit_code))
                .where(*scope)
                .group_by(units.c.path)
            ).all()
        by_path = {r.path: r for r in rows}
        for path, n_open, n_soon, n_late in counts:
            for ancestor in _prefixes(path):
                row = by_path.get(ancestor)
                if row is not None:
                    row.open += int(n_open)
                    row.due_soon += int(n_soon or 0)
                    row.overdue += int(n_late or 0)
        return BoardView(
            at=now, filter=f, due_soon_default_seconds=self.due_soon_seconds, units=rows
        )

    def cases(
        self,
        unit: str,
        bucket: str,
        f: BoardFilter | None = None,
        *,
        viewer: Viewer | str = ADMIN,
        limit: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> CasePage:
        """The open cases behind one cell: *unit*'s subtree, in *bucket*, most urgent
        first (deadline, then id; no deadline last), a page of *limit* after *after*."""
        if bucket not in BUCKETS:
            raise InvalidData({"bucket": f"unknown bucket {bucket!r}; one of {', '.join(BUCKETS)}"})
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidData({"limit": f"must be 1 to {MAX_PAGE}"})
        f = BoardFilter(workflow=(f or BoardFilter()).workflow, state=(f or BoardFilter()).state)
        who = as_viewer(viewer)
        now = self.clock.now()
        zone = ZoneInfo(self.timezone)
        c = cases.c
        with connection(read_only(self.engine)) as conn:
            prefix = self._scope(conn, who, unit)
            scope = self._where(who, f, prefix)
            due_soon = self._due_soon(conn, scope, now)
            overdue = c.deadline_at < now
            wanted = {"open": sa.true(), "due_soon": due_soon, "overdue": overdue}[bucket]
            no_deadline = sa.case((c.deadline_at.is_(None), 1), else_=0)
            stmt = (
                select(
                    c.id,
                    c.workflow,
                    c.definition_id,
                    c.state,
                    c.unit_code,
                    units.c.name.label("unit_name"),
                    c.deadline_at,
                    c.escalation_level,
                    c.opened_at,
                    sa.case((overdue, "overdue"), (due_soon, "due_soon"), else_="open").label(
                        "bucket"
                    ),
                )
                .select_from(cases.join(units, units.c.code == c.unit_code))
                .where(*scope, wanted)
                .order_by(no_deadline, c.deadline_at, c.id)
                .limit(limit)
            )
            if after is not None:
                stmt = stmt.where(self._after(conn, after))
            found = conn.execute(stmt).all()
            items = [
                _case(r, self.catalog.compiled(conn, r.definition_id).workflow, now, zone)
                for r in found
            ]
        next_cursor = items[-1].id if len(items) == limit else None
        return CasePage(unit=unit, bucket=bucket, items=items, next_cursor=next_cursor)

    # -- the statements' parts ---------------------------------------------------------
    def _scope(self, conn: Connection, who: Viewer, unit: str | None) -> str | None:
        """The path prefix of *unit* when *who* sees it (UnknownUnit otherwise); an
        unknown viewer is an error, not an empty board."""
        if not who.everything:
            grid.get_person(conn, who.actor)
        if unit is None:
            return None
        path = conn.execute(
            select(units.c.path).where(units.c.code == unit, visible(who, units.c.path))
        ).scalar_one_or_none()
        if path is None:
            raise UnknownUnit(unit)
        return str(path)

    def _units(self, conn: Connection, who: Viewer, prefix: str | None) -> list[UnitCounts]:
        stmt = (
            select(units.c.code, units.c.name, units.c.level, units.c.parent_code, units.c.path)
            .where(units.c.active.is_(True), visible(who, units.c.path))
            .order_by(units.c.path)
        )
        if prefix is not None:
            stmt = stmt.where(grid.in_subtree(units.c.path, prefix))
        found = conn.execute(stmt).all()
        paths = {r.path for r in found}
        out = []
        for r in found:
            above = sum(1 for p in _prefixes(r.path) if p != r.path and p in paths)
            out.append(
                UnitCounts(
                    unit=r.code,
                    name=r.name,
                    level=r.level,
                    parent=r.parent_code,
                    path=r.path,
                    depth=above,
                )
            )
        return out

    def _where(self, who: Viewer, f: BoardFilter, prefix: str | None) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = [cases.c.closed_at.is_(None), visible(who, units.c.path)]
        if f.workflow is not None:
            where.append(cases.c.workflow == f.workflow)
        if f.state is not None:
            where.append(cases.c.state == f.state)
        if prefix is not None:
            where.append(grid.in_subtree(units.c.path, prefix))
        return where

    def _due_soon(
        self, conn: Connection, scope: Iterable[ColumnElement[bool]], now: dt.datetime
    ) -> ColumnElement[bool]:
        """Deadline not passed and within the window of the case's (definition, state):
        the pairs present in scope are read first (one ``DISTINCT``), their windows come
        from the compiled definitions."""
        pairs = conn.execute(
            select(cases.c.definition_id, cases.c.state)
            .distinct()
            .select_from(cases.join(units, units.c.code == cases.c.unit_code))
            .where(*scope, cases.c.deadline_at.is_not(None))
        ).all()
        default = now + dt.timedelta(seconds=self.due_soon_seconds)
        whens: list[tuple[ColumnElement[bool], Any]] = []
        for definition_id, state in pairs:
            wf = self.catalog.compiled(conn, definition_id).workflow
            window = reminder_window(wf, state)
            if window is not None and window != self.due_soon_seconds:
                limit = now + dt.timedelta(seconds=window)
                whens.append(
                    (
                        (cases.c.definition_id == definition_id) & (cases.c.state == state),
                        sa.literal(limit, UTCDateTime),
                    )
                )
        cutoff: ColumnElement[Any] = (
            sa.case(*whens, else_=sa.literal(default, UTCDateTime))
            if whens
            else sa.literal(default, UTCDateTime)
        )
        return (cases.c.deadline_at >= now) & (cases.c.deadline_at <= cutoff)

    def _after(self, conn: Connection, after: str) -> ColumnElement[bool]:
        """Keyset condition: the rows after case *after* in (no deadline, deadline, id)."""
        c = cases.c
        mark = conn.execute(select(c.deadline_at).where(c.id == after)).one_or_none()
        if mark is None:
            raise InvalidData({"cursor": "not a next_cursor of this list"})
        since: dt.datetime | None = mark.deadline_at
        if since is None:
            return c.deadline_at.is_(None) & (c.id > after)
        return sa.or_(
            c.deadline_at.is_(None),
            c.deadline_at > since,
            (c.deadline_at == since) & (c.id > after),
        )


def _case(r: Any, wf: Workflow, now: dt.datetime, zone: ZoneInfo) -> BoardCase:
    deadline: dt.datetime | None = r.deadline_at
    return BoardCase(
        id=r.id,
        workflow=r.workflow,
        state=r.state,
        state_title=wf.state(r.state).title if wf.has_state(r.state) else r.state,
        unit=r.unit_code,
        unit_name=r.unit_name,
        bucket=r.bucket,
        deadline_at=deadline,
        deadline_local=f"{deadline.astimezone(zone):%Y-%m-%d %H:%M}" if deadline else None,
        seconds_left=int((deadline - now).total_seconds()) if deadline else None,
        escalation_level=r.escalation_level,
        opened_at=r.opened_at,
    )


def _prefixes(path: str) -> list[str]:
    """``/a/b/c/`` → ``/a/``, ``/a/b/``, ``/a/b/c/``: the paths of the unit and its ancestors."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]
