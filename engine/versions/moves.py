"""Moving open cases onto another version of their workflow (``gengbao workflow migrate``).

Editing a workflow registers a new version; running cases stay on the version
they started with (:mod:`engine.cases.catalog`).  :meth:`VersionMoves.run`
moves them:

- **which**: the open cases of the workflow on another version than the target
  (``from_version``: only that one; ``case_ids``: only those; a listed case that
  is closed, unknown or of another workflow is a problem).  Cases already on the
  target are left alone, so a second run moves nothing.
- **where**: each case keeps its state, or goes to the state ``state_map`` names
  for it; a state the target lacks (with no mapping), a final state, or case data
  the target refuses (a field it requires and the case lacks, a value its type
  refuses) makes the case one that cannot move, with the reason.
- **its deadline**: recomputed on the target's rule for the state, counted from
  when the case entered the state (or the rule's ``from:`` state), so the time
  already spent is kept.  The state's waiting deadline, reminder and escalation
  rows are cancelled and the target's written; a reminder whose time has passed
  is dropped, and a deadline or rung that already fired in this stay of the
  state is not written again — so a case already past a shortened deadline
  goes overdue once, at the next sweep, and never twice.  Collaboration duties
  (countersign parties, transfers, acknowledgement, supervision) keep their rows.
- **what is recorded**: a ``migrated`` history entry by the system per case
  (from → to state, versions, old and new deadline), in the hash chain.

A real run is **one transaction**: every listed case moves or none does (a
problem in any refuses the whole run with :class:`~engine.errors.MigrationRefused`;
a process killed half-way leaves every case where it was).  A dry run writes
nothing and reports the same plan, problems included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from engine.cases.service import CaseService
from engine.clock import Clock
from engine.definitions import Workflow
from engine.definitions.values import validate_data
from engine.errors import MigrationRefused, UnknownWorkflow
from engine.grid.visibility import ADMIN, Viewer, visible
from engine.store import connection, for_update, transaction
from engine.store.db import read_only
from engine.store.prepared import Prepared
from engine.store.tables import cases, timers, units, workflow_versions
from engine.timers import wake
from engine.timers.schedule import TIMER_COLUMNS, TimerSchedule
from engine.versions.deadlines import state_deadline
from engine.versions.replay import Replay, replay_closed

__all__ = ["CaseMove", "MigrationPlan", "PlannedTimer", "VersionMoves", "parse_state_map"]

_CASE_KINDS = ("deadline", "reminder", "escalation")
_INSERT_TIMERS = Prepared(timers.insert(), TIMER_COLUMNS)


@dataclass(frozen=True, kw_only=True)
class PlannedTimer:
    kind: str
    rung: int | None
    due: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rung": self.rung, "due": self.due.isoformat()}


@dataclass(frozen=True, kw_only=True)
class CaseMove:
    """One open case: where it is and where it would go (``problems``: why it cannot)."""

    case: str
    unit: str
    from_version: int
    to_version: int
    state: str
    new_state: str
    deadline: dt.datetime | None
    new_deadline: dt.datetime | None
    timers: tuple[PlannedTimer, ...] = ()
    problems: tuple[str, ...] = ()
    overdue_at_once: bool = False  # the new deadline has already passed

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "unit": self.unit,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "state": self.state,
            "new_state": self.new_state,
            "deadline": _iso(self.deadline),
            "new_deadline": _iso(self.new_deadline),
            "overdue_at_once": self.overdue_at_once,
            "timers": [t.as_dict() for t in self.timers],
            "problems": list(self.problems),
        }


@dataclass(frozen=True, kw_only=True)
class MigrationPlan:
    """What a run did, or with ``dry_run`` would do."""

    workflow: str
    to_version: int
    dry_run: bool
    moves: tuple[CaseMove, ...]
    problems: tuple[dict[str, Any], ...]  # every reason a case (or the request) cannot move
    moved: int = 0  # cases moved by this run (0 in a dry run)
    replay: Replay | None = None  # with --replay

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "workflow": self.workflow,
            "to_version": self.to_version,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "moved": self.moved,
            "cases": [m.as_dict() for m in self.moves],
            "problems": list(self.problems),
        }
        if self.replay is not None:
            out["replay"] = self.replay.as_dict()
        return out


class VersionMoves:
    def __init__(
        self, engine: Engine, cases_service: CaseService, schedule: TimerSchedule, clock: Clock
    ) -> None:
        self.engine = engine
        self.cases = cases_service
        self.catalog = cases_service.catalog
        self.schedule = schedule
        self.clock = clock

    def run(
        self,
        workflow: str,
        to_version: int,
        *,
        from_version: int | None = None,
        state_map: Mapping[str, str] | None = None,
        case_ids: Collection[str] | None = None,
        dry_run: bool = False,
        replay_days: int | None = None,
        viewer: Viewer = ADMIN,
    ) -> MigrationPlan:
        """Plan and (unless *dry_run*) move, all in one transaction; raises
        MigrationRefused, writing nothing, when any case (or the request) has a problem.
        *replay_days* (a dry run only) adds the replay of the cases closed in those days
        against the target's deadlines (:mod:`engine.versions.replay`).  A *viewer* moves
        (and replays) only the cases of its units; another's read as missing."""
        mapping = dict(state_map or {})
        # A dry run reads beside the writers (no lock); a real run locks the cases.
        opened = (
            connection(read_only(self.engine))
            if dry_run
            else transaction(self.engine, "migrate cases in")
        )
        with opened as conn:
            target = self._definition(conn, workflow, to_version)
            source = (
                self._definition(conn, workflow, from_version) if from_version is not None else None
            )
            wf = self.catalog.compiled(conn, target).workflow
            problems = [
                {"case": None, "state": old, "reason": reason}
                for old, reason in _map_problems(wf, mapping, to_version)
            ]
            rows, missing = self._rows(
                conn, workflow, target, source, case_ids, viewer, lock=not dry_run
            )
            problems += missing
            moves = [self._plan(conn, row, target, to_version, wf, mapping) for row in rows]
            problems += [
                {"case": m.case, "state": m.state, "reason": reason}
                for m in moves
                for reason in m.problems
            ]
            replay = None
            if replay_days is not None and dry_run:  # a replay only reports
                replay = replay_closed(
                    conn,
                    self.catalog,
                    self.schedule,
                    viewer=viewer,
                    workflow=workflow,
                    target=wf,
                    state_map=mapping,
                    days=replay_days,
                    now=self.clock.now(),
                )
            plan = MigrationPlan(
                workflow=workflow,
                to_version=to_version,
                dry_run=dry_run,
                moves=tuple(moves),
                problems=tuple(problems),
                replay=replay,
            )
            if dry_run:
                return plan
            if problems:
                raise MigrationRefused(problems)
            for row, move in zip(rows, moves, strict=True):
                self._apply(conn, row, target, move)
        return MigrationPlan(
            workflow=workflow,
            to_version=to_version,
            dry_run=False,
            moves=tuple(moves),
            problems=(),
            moved=len(moves),
        )

    # -- reading -------------------------------------------------------------
    def _definition(self, conn: Connection, workflow: str, version: int) -> int:
        v = workflow_versions.c
        found: int | None = conn.execute(
            select(v.id).where(v.workflow == workflow, v.version == version)
        ).scalar_one_or_none()
        if found is None:
            raise UnknownWorkflow(workflow, version)
        return found

    def _rows(
        self,
        conn: Connection,
        workflow: str,
        target: int,
        source: int | None,
        case_ids: Collection[str] | None,
        viewer: Viewer,
        *,
        lock: bool,
    ) -> tuple[list[Any], list[dict[str, Any]]]:
        c = cases.c
        query = select(cases).where(c.workflow == workflow, c.closed_at.is_(None))
        if not viewer.everything:
            query = query.where(
                c.unit_code.in_(select(units.c.code).where(visible(viewer, units.c.path)))
            )
        if source is not None:
            query = query.where(c.definition_id == source)
        if case_ids is not None:
            query = query.where(c.id.in_(sorted(set(case_ids))))
        query = query.order_by(c.id)
        rows = list(conn.execute(for_update(query, conn, key_share=True) if lock else query))
        problems: list[dict[str, Any]] = []
        if case_ids is not None:
            found = {r.id for r in rows}
            for case_id in sorted(set(case_ids) - found):
                problems.append(
                    {
                        "case": case_id,
                        "state": None,
                        "reason": self._why_not_listed(conn, case_id, workflow, source, viewer),
                    }
                )
        return [r for r in rows if r.definition_id != target], problems

    def _why_not_listed(
        self, conn: Connection, case_id: str, workflow: str, source: int | None, viewer: Viewer
    ) -> str:
        c = cases.c
        query = select(c.workflow, c.closed_at, c.definition_id).where(c.id == case_id)
        if not viewer.everything:
            query = query.join(units, units.c.code == c.unit_code).where(
                visible(viewer, units.c.path)
            )
        row = conn.execute(query).one_or_none()
        if row is None:
            return "no such case"
        if row.workflow != workflow:
            return f"the case runs workflow {row.workflow!r}, not {workflow!r}"
        if row.closed_at is not None:
            return "the case is closed; only open cases move"
        version = self.catalog.version_number(conn, row.definition_id)
        return f"the case is on v{version}, not the --from version"

    # -- one case --------------------------------------------------------------
    def _plan(
        self,
        conn: Connection,
        row: Any,
        target: int,
        to_version: int,
        wf: Workflow,
        mapping: Mapping[str, str],
    ) -> CaseMove:
        new_state = mapping.get(row.state, row.state)
        move = CaseMove(
            case=row.id,
            unit=row.unit_code,
            from_version=self.catalog.version_number(conn, row.definition_id),
            to_version=to_version,
            state=row.state,
            new_state=new_state,
            deadline=row.deadline_at,
            new_deadline=None,
        )
        problems = self._problems(row, wf, new_state, to_version)
        if problems:
            return _with(move, problems=tuple(problems))
        now = self.clock.now()
        deadline, planned = self._timers(conn, row, wf, new_state, now)
        return _with(
            move,
            new_deadline=deadline,
            timers=tuple(planned),
            overdue_at_once=deadline is not None and deadline <= now,
        )

    def _problems(self, row: Any, wf: Workflow, new_state: str, to_version: int) -> list[str]:
        if not wf.has_state(new_state):
            if new_state == row.state:
                return [
                    f"state {row.state!r} is not in v{to_version}; "
                    f"map it with --map {row.state}=STATE"
                ]
            return [f"mapped to {new_state!r}, which v{to_version} does not have"]
        if wf.state(new_state).final:
            return [
                f"state {new_state!r} is final in v{to_version}: a migration does not "
                "close cases (close it with an event)"
            ]
        required = [f.name for f in wf.fields if f.required]
        _, bad = validate_data(wf.fields, row.data, require=required, allow_unknown=True)
        return [f"field {name!r} {reason} in v{to_version}" for name, reason in sorted(bad.items())]

    def _timers(
        self, conn: Connection, row: Any, wf: Workflow, new_state: str, now: dt.datetime
    ) -> tuple[dt.datetime | None, list[PlannedTimer]]:
        """The state's deadline on the target and its timers still to come."""
        state = wf.state(new_state)
        if state.deadline is None:
            return None, []
        tz = wf.timezone or self.schedule.default_timezone
        found = state_deadline(conn, self.schedule, row, state.deadline, wf, new_state, tz)
        if found is None:
            return None, []
        deadline, rows = found
        fired = self._fired(conn, row)
        planned: list[PlannedTimer] = []
        for r in rows:
            if r["kind"] == "reminder" and r["due_at"] <= now:
                continue  # its moment has passed: no late reminder
            if r["kind"] != "reminder" and (r["kind"], r["rung"]) in fired:
                continue  # already fired in this stay of the state: never twice
            planned.append(PlannedTimer(kind=r["kind"], rung=r["rung"], due=r["due_at"]))
        return deadline, planned

    def _fired(self, conn: Connection, row: Any) -> set[tuple[str, int | None]]:
        t = timers.c
        return {
            (r.kind, r.rung)
            for r in conn.execute(
                select(t.kind, t.rung).where(
                    t.case_id == row.id,
                    t.state == row.state,
                    t.status == "fired",
                    t.kind.in_(("deadline", "escalation")),
                    t.created_at >= row.state_entered_at,
                )
            )
        }

    # -- writing -----------------------------------------------------------------
    def _apply(self, conn: Connection, row: Any, target: int, move: CaseMove) -> None:
        t = timers.c
        conn.execute(
            update(timers)
            .where(
                t.case_id == row.id,
                (t.status == "pending") | (t.status == "failed"),
                t.kind.in_(_CASE_KINDS),
            )
            .values(status="cancelled", next_attempt_at=None, detail="migrated")
        )
        payload = {
            "from_version": move.from_version,
            "to_version": move.to_version,
            "from_state": move.state,
            "to_state": move.new_state,
            "deadline": _iso(move.deadline),
            "new_deadline": _iso(move.new_deadline),
        }
        revision = self.cases.rebase(
            conn, row, target, move.new_state, payload, deadline_at=move.new_deadline
        )
        now = self.clock.now()
        rows = [
            {
                "case_id": row.id,
                "state": move.new_state,
                "case_revision": revision,
                "kind": p.kind,
                "rung": p.rung,
                "deadline_at": move.new_deadline,
                "due_at": p.due,
                "repeat_seconds": None,
                "status": "pending",
                "created_at": now,
                "subject_id": None,
            }
            for p in move.timers
        ]
        if rows:
            _INSERT_TIMERS.executemany(conn, rows)
            wake.written(conn, min(r["due_at"] for r in rows))


def _map_problems(wf: Workflow, mapping: Mapping[str, str], version: int) -> list[tuple[str, str]]:
    return [
        (old, f"--map {old}={new}: v{version} has no state {new!r}")
        for old, new in sorted(mapping.items())
        if not wf.has_state(new)
    ]


def _with(move: CaseMove, **changes: Any) -> CaseMove:
    return replace(move, **changes)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def parse_state_map(pairs: Sequence[str]) -> dict[str, str]:
    """``OLD=NEW`` pairs (the CLI's ``--map``) as a dict; ValueError names a bad pair."""
    out: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise ValueError(f"--map {pair!r}: expected OLD_STATE=NEW_STATE")
        out[old.strip()] = new.strip()
    return out
