"""Writes to a case row on behalf of its timers, for the case service.

The ``cases`` table has one writer, the case service (:mod:`engine.cases.service`);
the escalation level, raised by an escalation rung, is written through this
function, in the caller's transaction, instead of by the timer modules
themselves.  (The current state's deadline is decided by the timers' effects
hook and written with the case service's own update: ``Change.case_values``.)
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, bindparam, update

from engine.store.tables import cases

__all__ = ["raise_escalation_level", "raise_escalation_levels"]


def raise_escalation_level(conn: Connection, case_id: str, level: int) -> None:
    """Raise the case's escalation level to *level* (never lowers it: the state's
    next entry resets it, in the case service's own update)."""
    conn.execute(
        update(cases)
        .where(cases.c.id == case_id, cases.c.escalation_level < level)
        .values(escalation_level=level)
    )


def raise_escalation_levels(conn: Connection, levels: Mapping[str, int]) -> None:
    """:func:`raise_escalation_level` for several cases (case id → level) in one
    ``executemany`` (the timer sweep's batch)."""
    if not levels:
        return
    conn.execute(
        update(cases)
        .where(cases.c.id == bindparam("b_case"), cases.c.escalation_level < bindparam("b_level"))
        .values(escalation_level=bindparam("b_level")),
        [{"b_case": case_id, "b_level": level} for case_id, level in sorted(levels.items())],
    )
