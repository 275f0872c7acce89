"""The operations service: is the database there, what does it hold (``/readyz``, ``/metrics``).

Reads only, on connections of its own; the counts are of the whole
installation, so the HTTP layer shows them to the roles of
``api.metrics_roles`` only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine, case, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from engine.store import connection
from engine.store.db import read_only
from engine.store.tables import cases, deliveries, timers

__all__ = ["Gauges", "Operations"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Gauges:
    """What the database holds now, each as (labels…, count) rows in label order."""

    open_cases: list[tuple[str, str, int]]  # workflow, state, count
    pending_timers: list[tuple[str, int]]  # kind, count
    failed_timers: list[tuple[str, str, int]]  # kind, retry (scheduled | exhausted), count
    deliveries: list[tuple[str, int]]  # status, count


class Operations:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def database_reachable(self) -> bool:
        """Whether the database answers a ``SELECT 1`` (a failure is logged, not raised)."""
        try:
            with connection(read_only(self.engine)) as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            log.warning("readyz: database not reachable: %s", exc)
            return False
        return True

    def gauges(self) -> Gauges:
        with connection(read_only(self.engine)) as conn:
            open_cases = conn.execute(
                select(cases.c.workflow, cases.c.state, func.count())
                .where(cases.c.closed_at.is_(None))
                .group_by(cases.c.workflow, cases.c.state)
                .order_by(cases.c.workflow, cases.c.state)
            ).all()
            pending = conn.execute(
                select(timers.c.kind, func.count())
                .where(timers.c.status == "pending")
                .group_by(timers.c.kind)
                .order_by(timers.c.kind)
            ).all()
            retry = case((timers.c.next_attempt_at.is_(None), "exhausted"), else_="scheduled")
            failed = conn.execute(
                select(timers.c.kind, retry, func.count())
                .where(timers.c.status == "failed")
                .group_by(timers.c.kind, retry)
                .order_by(timers.c.kind, retry)
            ).all()
            sent = conn.execute(
                select(deliveries.c.status, func.count())
                .group_by(deliveries.c.status)
                .order_by(deliveries.c.status)
            ).all()
        return Gauges(
            open_cases=[(w, s, n) for w, s, n in open_cases],
            pending_timers=[(k, n) for k, n in pending],
            failed_timers=[(k, r, n) for k, r, n in failed],
            deliveries=[(s, n) for s, n in sent],
        )
