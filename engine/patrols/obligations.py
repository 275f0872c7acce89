"""Patrol obligations: rules → periods per unit → reminders, missed-patrol facts, rungs.

Timers are rows in the same ``timers`` table as case deadlines, fired by the
same sweep (``TimerService.handlers["patrol"]``), so a patrol reminder is as
durable as a case reminder and ``gengbao timers run-due`` lists it.  A patrol
timer belongs to one *rule and period*, not to one unit: it acts on every
unit of the rule's level in one set-based step.  Its row has no case;

==========  ======================  ==========================================
``state``   ``rung``                what firing does
==========  ======================  ==========================================
remind      NULL                    notify the rule's ``roles`` of every unit
                                    whose period is still short of ``times``
close       NULL                    at the period's end: each unit's period is
                                    ``met`` or ``missed`` (a missed-patrol fact
                                    is recorded); the next period's rows are
                                    written and the timers of the period after
                                    it
escalate    index into escalate     notify the rung's ``notify`` roles of every
                                    unit that missed the period
==========  ======================  ==========================================

``rule_id`` and ``period_start`` name the period, ``deadline_at`` is its end.
Loading rules writes the current and the next period's timers, and each
``close`` writes the timers of the period after the next: the next period's
timers exist as soon as the current one starts, and a sweep that was down
for weeks catches up period by period, oldest first.

A patrol counts (``patrol_periods.done``) for the unit of a rule's level on
the patrolled unit's chain — the unit itself or an ancestor — when the
patroller holds one of the rule's roles on that chain, and only while the
period is open: a patrol recorded after its period closed is in the ledger
but does not change a closed period.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, insert, literal, select, update

from engine.calendars import WorkingCalendar
from engine.clock import Clock
from engine.grid import registry as grid
from engine.grid.visibility import ADMIN, Viewer, visible
from engine.patrols.periods import Period, following, period_of
from engine.patrols.rules import REMINDER_TEMPLATE, PatrolRule, RulesFile
from engine.store import connection, insert_or_ignore, transaction
from engine.store.db import read_only
from engine.store.tables import (
    UTCDateTime,
    patrol_missed,
    patrol_periods,
    patrol_rules,
    timers,
    units,
)
from engine.yamlkit.durations import Duration
from notifications.outbox import enqueue

__all__ = ["KIND", "LoadSummary", "Obligations"]

KIND = "patrol"


@dataclass(frozen=True)
class LoadSummary:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "added": self.added,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "deactivated": self.deactivated,
        }

    def __str__(self) -> str:
        parts = [
            f"{len(v)} {k}" + (f" ({', '.join(v)})" if v else "") for k, v in self.as_dict().items()
        ]
        return "patrol rules: " + "; ".join(parts)


class Obligations:
    def __init__(
        self, engine: Engine, clock: Clock, calendar: WorkingCalendar, default_timezone: str
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.calendar = calendar
        self.default_timezone = default_timezone

    # -- loading rules ---------------------------------------------------
    def load(self, rules: RulesFile) -> LoadSummary:
        """Make *rules* the active set, in one transaction (see the module docstring)."""
        now = self.clock.now()
        summary = LoadSummary()
        with transaction(self.engine, "load patrol rules into") as conn:
            existing = {r.id: r for r in conn.execute(select(patrol_rules))}
            for rule in rules.rules:
                row = existing.get(rule.id)
                values = _rule_values(rule, rules.source, now)
                if row is None:
                    conn.execute(insert(patrol_rules).values(id=rule.id, **values))
                    summary.added.append(rule.id)
                elif row.content_hash != rule.content_hash or not row.active:
                    conn.execute(
                        update(patrol_rules).where(patrol_rules.c.id == rule.id).values(**values)
                    )
                    self._retire(conn, rule.id, now, keep=self._current_starts(rule, now))
                    conn.execute(
                        update(patrol_periods)
                        .where(
                            patrol_periods.c.rule_id == rule.id,
                            patrol_periods.c.status == "open",
                        )
                        .values(required=rule.times)
                    )
                    summary.changed.append(rule.id)
                else:
                    summary.unchanged.append(rule.id)
                    continue
                self._schedule(conn, rule, now)
            wanted = {r.id for r in rules.rules}
            for rule_id, row in existing.items():
                if row.active and rule_id not in wanted:
                    conn.execute(
                        update(patrol_rules)
                        .where(patrol_rules.c.id == rule_id)
                        .values(active=False, loaded_at=now)
                    )
                    self._retire(conn, rule_id, now, keep=())
                    summary.deactivated.append(rule_id)
        return summary

    def rules(self) -> list[PatrolRule]:
        """The active rules, read on a connection of its own."""
        with connection(read_only(self.engine)) as conn:
            return self.active_rules(conn)

    def active_rules(self, conn: Connection) -> list[PatrolRule]:
        """The active rules, read in the caller's transaction (crediting a patrol reads
        them with the periods it updates)."""
        query = select(patrol_rules).where(patrol_rules.c.active.is_(True))
        return [PatrolRule.from_row(r) for r in conn.execute(query.order_by(patrol_rules.c.id))]

    def _current_starts(self, rule: PatrolRule, now: dt.datetime) -> tuple[dt.datetime, ...]:
        current = period_of(rule.every, now, rule.timezone)
        return current.start, following(rule.every, current, rule.timezone).start

    def _retire(
        self, conn: Connection, rule_id: str, now: dt.datetime, keep: Sequence[dt.datetime]
    ) -> None:
        """Cancel a rule's pending (or failed) timers; void its open periods except *keep*."""
        conn.execute(
            update(timers)
            .where(timers.c.rule_id == rule_id, timers.c.status.in_(("pending", "failed")))
            .values(status="cancelled", next_attempt_at=None)
        )
        voided = update(patrol_periods).where(
            patrol_periods.c.rule_id == rule_id, patrol_periods.c.status == "open"
        )
        if keep:
            voided = voided.where(patrol_periods.c.period_start.not_in(list(keep)))
        conn.execute(voided.values(status="void", closed_at=now))

    # -- periods and timers ----------------------------------------------
    def _schedule(self, conn: Connection, rule: PatrolRule, now: dt.datetime) -> None:
        current = period_of(rule.every, now, rule.timezone)
        self._materialize(conn, rule, current)
        self._write_timers(conn, rule, current, now)
        self._write_timers(conn, rule, following(rule.every, current, rule.timezone), now)

    def _materialize(self, conn: Connection, rule: PatrolRule, period: Period) -> None:
        """One open row per active unit of the rule's level for *period* (existing kept)."""
        p = patrol_periods.c
        chosen = select(
            literal(rule.id),
            units.c.code,
            literal(period.start, UTCDateTime),
            literal(period.end, UTCDateTime),
            literal(rule.times),
            literal(0),
            literal("open"),
        ).where(
            units.c.level == rule.level,
            units.c.active.is_(True),
            ~exists().where(
                p.rule_id == rule.id, p.unit_code == units.c.code, p.period_start == period.start
            ),
        )
        columns = ["rule_id", "unit_code", "period_start", "period_end", "required", "done"]
        stmt = insert_or_ignore(patrol_periods, conn).from_select([*columns, "status"], chosen)
        conn.execute(stmt)

    def _write_timers(
        self, conn: Connection, rule: PatrolRule, period: Period, now: dt.datetime
    ) -> None:
        """The period's timers, except those it already has (pending or fired)."""
        t = timers.c
        have = {
            (r.state, r.rung, r.due_at if r.state == "remind" else None)
            for r in conn.execute(
                select(t.state, t.rung, t.due_at).where(
                    t.kind == KIND,
                    t.rule_id == rule.id,
                    t.period_start == period.start,
                    t.status != "cancelled",
                )
            )
        }

        def row(step: str, due: dt.datetime, rung: int | None = None) -> dict[str, Any]:
            return {
                "case_id": None,
                "state": step,
                "case_revision": 0,
                "kind": KIND,
                "rung": rung,
                "deadline_at": period.end,
                "due_at": due,
                "repeat_seconds": None,
                "status": "pending",
                "created_at": now,
                "rule_id": rule.id,
                "period_start": period.start,
            }

        rows: list[dict[str, Any]] = []
        for before in rule.remind:
            due = self.calendar.before(period.end, before, rule.timezone)
            if due > period.start:
                rows.append(row("remind", due))
        rows.append(row("close", period.end))
        for i, rung in enumerate(rule.escalate):
            rows.append(row("escalate", self._after(period.end, rung.after, rule.timezone), i))
        rows = [
            r
            for r in rows
            if (r["state"], r["rung"], r["due_at"] if r["state"] == "remind" else None) not in have
        ]
        if rows:
            conn.execute(insert(timers), rows)

    def _after(self, end: dt.datetime, span: Duration, tz: str) -> dt.datetime:
        if span.kind == "exact":
            return end + dt.timedelta(seconds=span.seconds)
        return self.calendar.due(end, span, tz)

    # -- the timer handler (runs inside the sweep's transaction) ----------
    def fire(self, conn: Connection, timer: Any, now: dt.datetime) -> str:
        row = conn.execute(
            select(patrol_rules).where(patrol_rules.c.id == timer.rule_id)
        ).one_or_none()
        if row is None or not row.active:
            return f"rule {timer.rule_id} is no longer loaded; nothing to do"
        rule = PatrolRule.from_row(row)
        period = period_of(rule.every, timer.period_start, rule.timezone)
        if timer.state == "remind":
            return self._remind(conn, rule, period, timer, now)
        if timer.state == "close":
            return self._close(conn, rule, period, now, timer.id)
        return self._escalate(conn, rule, period, timer, now)

    def _remind(
        self, conn: Connection, rule: PatrolRule, period: Period, timer: Any, now: dt.datetime
    ) -> str:
        self._materialize(conn, rule, period)
        p = patrol_periods.c
        short = conn.execute(
            select(p.unit_code, p.done, p.required)
            .where(
                p.rule_id == rule.id,
                p.period_start == period.start,
                p.status == "open",
                p.done < p.required,
            )
            .order_by(p.unit_code)
        ).all()
        self._notify(
            conn, short, rule, period, timer.id, now, "reminder", REMINDER_TEMPLATE, rule.roles
        )
        return f"{rule.id} {period.label}: {len(short)} unit(s) reminded"

    def _close(
        self, conn: Connection, rule: PatrolRule, period: Period, now: dt.datetime, timer_id: int
    ) -> str:
        self._materialize(conn, rule, period)
        p = patrol_periods.c
        mine = and_(p.rule_id == rule.id, p.period_start == period.start, p.status == "open")
        met = conn.execute(
            update(patrol_periods)
            .where(mine, p.done >= p.required)
            .values(status="met", closed_at=now)
        ).rowcount
        missed = conn.execute(
            select(p.unit_code, p.done, p.required).where(mine).order_by(p.unit_code)
        ).all()
        if missed:
            conn.execute(update(patrol_periods).where(mine).values(status="missed", closed_at=now))
            conn.execute(
                insert(patrol_missed),
                [
                    {
                        "rule_id": rule.id,
                        "unit_code": m.unit_code,
                        "period_start": period.start,
                        "period_end": period.end,
                        "done": m.done,
                        "required": m.required,
                        "level": 0,
                        "recorded_at": now,
                        "timer_id": timer_id,
                    }
                    for m in missed
                ],
            )
        upcoming = following(rule.every, period, rule.timezone)
        self._materialize(conn, rule, upcoming)
        self._write_timers(conn, rule, following(rule.every, upcoming, rule.timezone), now)
        return f"{rule.id} {period.label}: {met} met, {len(missed)} missed"

    def _escalate(
        self, conn: Connection, rule: PatrolRule, period: Period, timer: Any, now: dt.datetime
    ) -> str:
        if timer.rung is None or timer.rung >= len(rule.escalate):
            return f"{rule.id}: rung {timer.rung} is no longer in the rule"
        rung = rule.escalate[timer.rung]
        m = patrol_missed.c
        mine = and_(m.rule_id == rule.id, m.period_start == period.start)
        missed = conn.execute(
            select(m.unit_code, m.done, m.required).where(mine).order_by(m.unit_code)
        ).all()
        self._notify(
            conn,
            missed,
            rule,
            period,
            timer.id,
            now,
            "escalation",
            rung.template,
            rung.notify,
            rung=timer.rung,
        )
        conn.execute(
            update(patrol_missed).where(mine, m.level < timer.rung + 1).values(level=timer.rung + 1)
        )
        told = ", ".join(rung.notify)
        return f"{rule.id} {period.label} rung {timer.rung + 1}: {len(missed)} unit(s); told {told}"

    def _notify(
        self,
        conn: Connection,
        rows: Iterable[Any],
        rule: PatrolRule,
        period: Period,
        timer_id: int,
        now: dt.datetime,
        kind: str,
        template: str,
        roles: Iterable[str],
        *,
        rung: int | None = None,
    ) -> None:
        base = {
            "rule": rule.id,
            "level": rule.level,
            "every": rule.every.text,
            "period_start": period.start.isoformat(),
            "period_end": period.end.isoformat(),
            "period": period.label_zh,
            "step": "remind" if kind == "reminder" else "escalate",
            "rung": rung,
        }
        told = sorted(set(roles))
        for r in rows:  # no case: each notice names its unit
            enqueue(
                conn,
                case_id=None,
                unit_code=r.unit_code,
                kind=kind,
                roles=told,
                template=template,
                context={"patrol": {**base, "done": r.done, "required": r.required}},
                dedupe_key=f"timer:{timer_id}:{r.unit_code}",
                at=now,
            )

    # -- patrols count ---------------------------------------------------
    def credit(
        self,
        conn: Connection,
        chain: dict[str, str],
        held: set[str],
        started_at: dt.datetime,
        now: dt.datetime,
    ) -> list[dict[str, str]]:
        """Count one patrol started at *started_at* for the open periods it fulfils.

        *chain* maps level → unit code along the patrolled unit's chain; *held*
        are the patroller's ``LEVEL.ROLE`` on that chain.
        """
        credited: list[dict[str, str]] = []
        p = patrol_periods.c
        for rule in self.active_rules(conn):
            unit = chain.get(rule.level)
            if unit is None or not held & set(rule.roles):
                continue
            period = period_of(rule.every, started_at, rule.timezone)
            if period.end > now:  # an open period may not have its row yet
                conn.execute(
                    insert_or_ignore(patrol_periods, conn).values(
                        rule_id=rule.id,
                        unit_code=unit,
                        period_start=period.start,
                        period_end=period.end,
                        required=rule.times,
                        done=0,
                        status="open",
                    )
                )
            counted = conn.execute(
                update(patrol_periods)
                .where(
                    p.rule_id == rule.id,
                    p.unit_code == unit,
                    p.period_start == period.start,
                    p.status == "open",
                )
                .values(done=p.done + 1)
            ).rowcount
            if counted:
                credited.append({"rule": rule.id, "unit": unit, "period": period.label})
        return credited

    # -- reading ---------------------------------------------------------
    def periods(
        self,
        at: dt.datetime | None = None,
        unit_prefix: str | None = None,
        *,
        unit: str | None = None,
        viewer: Viewer | str = ADMIN,
    ) -> list[dict[str, Any]]:
        """Every unit's period of every active rule at *at* (default now); *unit*: that
        unit and those below it (UnknownUnit if there is none); *viewer*: only the
        units it sees."""
        moment = at or self.clock.now()
        out: list[dict[str, Any]] = []
        p = patrol_periods.c
        with connection(read_only(self.engine)) as conn:
            if unit is not None:
                unit_prefix = grid.subtree_prefix(conn, unit)
            for rule in self.active_rules(conn):
                period = period_of(rule.every, moment, rule.timezone)
                query = (
                    select(p.unit_code, units.c.name, p.done, p.required, p.status)
                    .join(units, units.c.code == p.unit_code)
                    .where(
                        p.rule_id == rule.id,
                        p.period_start == period.start,
                        visible(viewer, units.c.path),
                    )
                    .order_by(units.c.path)
                )
                if unit_prefix is not None:
                    query = query.where(units.c.path.startswith(unit_prefix, autoescape=True))
                for r in conn.execute(query):
                    out.append(
                        {
                            "rule": rule.id,
                            "period": period.label,
                            "unit": r.unit_code,
                            "unit_name": r.name,
                            "done": r.done,
                            "required": r.required,
                            "status": r.status,
                        }
                    )
        return out


def _rule_values(rule: PatrolRule, source: str, now: dt.datetime) -> dict[str, Any]:
    d = rule.as_dict()
    return {
        "level": rule.level,
        "every": rule.every.text,
        "times": rule.times,
        "roles": d["roles"],
        "remind": d["remind"],
        "escalate": d["escalate"],
        "timezone": rule.timezone,
        "content_hash": rule.content_hash,
        "source": source,
        "active": True,
        "loaded_at": now,
    }
