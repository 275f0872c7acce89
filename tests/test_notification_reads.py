"""Who was told and who read it: a person acknowledges a notification sent to them."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from engine.app import App
from engine.clock import FixedClock
from engine.errors import NotPermitted, UnknownNotification
from engine.store.tables import deliveries, notification_reads, notifications
from tests.support.farmland import open_case

MEMBER1 = "p-bq-xh-member1"
LEADER = "p-bq-xh-leader"


def assigned_notice(app: App) -> int:
    """A case assigned to MEMBER1 and its notice expanded into deliveries; its id."""
    case_id = open_case(app)
    app.assignments.assign(case_id, MEMBER1, LEADER)
    app.dispatcher.expand()
    with app.engine.connect() as conn:
        notice: int = conn.execute(
            sa.select(notifications.c.id).where(
                notifications.c.case_id == case_id, notifications.c.template == "case_assigned"
            )
        ).scalar_one()
        people = set(
            conn.execute(
                sa.select(deliveries.c.person_id).where(deliveries.c.notification_id == notice)
            ).scalars()
        )
    assert people == {MEMBER1}
    return notice


def reads(app: App) -> list[tuple[int, str]]:
    with app.engine.connect() as conn:
        return [
            (r.notification_id, r.person_id) for r in conn.execute(sa.select(notification_reads))
        ]


def test_the_recipient_acks_once_and_a_second_ack_keeps_the_first_time(
    app: App, clock: FixedClock
) -> None:
    notice = assigned_notice(app)
    first = app.notification_reads.ack(notice, MEMBER1)
    assert first["first"] is True and first["person"] == MEMBER1
    clock.advance(timedelta(minutes=5))
    second = app.notification_reads.ack(notice, MEMBER1)
    assert second["first"] is False and second["acked_at"] == first["acked_at"]
    assert reads(app) == [(notice, MEMBER1)]
    listed = [d for d in app.dispatcher.list(limit=100) if d["notification"] == notice]
    assert listed and {d["read_at"] for d in listed} == {first["acked_at"]}


def test_someone_it_was_not_sent_to_cannot_ack_it(app: App) -> None:
    notice = assigned_notice(app)
    with pytest.raises(NotPermitted) as refused:
        app.notification_reads.ack(notice, LEADER)
    assert "not sent to this person" in str(refused.value)
    assert reads(app) == []
    unread = [d for d in app.dispatcher.list(limit=100) if d["notification"] == notice]
    assert {d["read_at"] for d in unread} == {None}


def test_an_unknown_notification_is_not_found(app: App) -> None:
    with pytest.raises(UnknownNotification):
        app.notification_reads.ack(999_999, MEMBER1)
    assert reads(app) == []
