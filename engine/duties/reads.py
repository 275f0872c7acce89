"""Who read a notification (notifications ack): "who was told and who read it".

A person acknowledges a notification sent to them (a delivery row names them);
the first acknowledgement's time is kept, a second one answers the same.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, select

from engine.clock import Clock
from engine.errors import NotPermitted, UnknownNotification
from engine.store import insert_or_ignore, transaction
from engine.store.tables import deliveries, notification_reads, notifications

__all__ = ["NotificationReads"]


class NotificationReads:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def ack(self, notification_id: int, actor: str) -> dict[str, Any]:
        """Record that *actor* read the notification; ``{"notification", "person",
        "acked_at", "first"}`` (``first`` False: it was acknowledged before)."""
        with transaction(self.engine) as conn:
            found = conn.execute(
                select(notifications.c.id, notifications.c.case_id).where(
                    notifications.c.id == notification_id
                )
            ).one_or_none()
            if found is None:
                raise UnknownNotification(notification_id)
            told = conn.execute(
                select(deliveries.c.id)
                .where(
                    deliveries.c.notification_id == notification_id,
                    deliveries.c.person_id == actor,
                )
                .limit(1)
            ).first()
            if told is None:
                raise NotPermitted(
                    actor,
                    f"acknowledge notification {notification_id}",
                    "-",
                    [],
                    "it was not sent to this person",
                )
            now: dt.datetime = self.clock.now()
            wrote = conn.execute(
                insert_or_ignore(notification_reads, conn)
                .values(notification_id=notification_id, person_id=actor, acked_at=now)
                .returning(notification_reads.c.person_id)
            ).first()
            acked_at = conn.execute(
                select(notification_reads.c.acked_at).where(
                    notification_reads.c.notification_id == notification_id,
                    notification_reads.c.person_id == actor,
                )
            ).scalar_one()
        return {
            "notification": notification_id,
            "case": found.case_id,
            "person": actor,
            "acked_at": acked_at.isoformat(),
            "first": wrote is not None,
        }
