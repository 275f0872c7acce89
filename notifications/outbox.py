"""The outbox: notifications are rows written in the transaction of their cause.

A row says *what* to tell (kind, template, the context of the cause) and *to
whom by role* (``town.leader``); recipients and channels are resolved on the
grid when the dispatcher sends it, like permissions are.  ``dedupe_key``
names the cause, so a cause can enqueue a given notification only once.
``priority`` (:data:`URGENT` for a transition marked ``urgent: true``) puts
a row ahead of the others.  Enqueueing also wakes the dispatchers once the
transaction commits (:mod:`notifications.wakeup`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, insert

from engine.cases.service import Change
from engine.store.prepared import Prepared
from engine.store.tables import notifications
from notifications.templates import GENERIC
from notifications.wakeup import mark

__all__ = [
    "GENERIC",
    "NORMAL",
    "URGENT",
    "TransitionNotifications",
    "enqueue",
    "enqueue_many",
]

NORMAL = 0
URGENT = 1

_INSERT = Prepared(  # compiled once per dialect
    insert(notifications).returning(notifications.c.id),
    (
        "case_id",
        "unit_code",
        "kind",
        "template",
        "roles",
        "context",
        "dedupe_key",
        "status",
        "created_at",
        "priority",
    ),
)


def enqueue(
    conn: Connection,
    *,
    case_id: str | None,
    unit_code: str | None = None,
    kind: str,
    roles: Iterable[str],
    template: str | None,
    context: Mapping[str, Any],
    dedupe_key: str,
    at: Any,
    priority: int = NORMAL,
) -> int:
    """Insert one pending notification; returns its id.  A notice without a case (a
    patrol notice) names its *unit_code*: the dispatcher resolves the roles there."""
    row = _row(
        case_id=case_id,
        unit_code=unit_code,
        kind=kind,
        roles=roles,
        template=template,
        context=context,
        dedupe_key=dedupe_key,
        at=at,
        priority=priority,
    )
    row_id: int = _INSERT.execute(conn, row).scalar_one()
    mark(conn)
    return row_id


def _row(
    *,
    case_id: str | None,
    kind: str,
    roles: Iterable[str],
    template: str | None,
    context: Mapping[str, Any],
    dedupe_key: str,
    at: Any,
    unit_code: str | None = None,
    priority: int = NORMAL,
) -> dict[str, Any]:
    """The notifications row of :func:`enqueue`'s arguments."""
    return {
        "case_id": case_id,
        "unit_code": unit_code,
        "kind": kind,
        "template": template or GENERIC[kind],
        "roles": sorted(set(roles)),
        "context": dict(context),
        "dedupe_key": dedupe_key,
        "status": "pending",
        "created_at": at,
        "priority": priority,
    }


class TransitionNotifications:
    """Effects hook: a transition with ``notify`` queues its notification."""

    def on_change(self, conn: Connection, change: Change) -> dict[str, Any]:
        if not _notifies(change):
            return {}
        row_id = enqueue(conn, **self.notice(change))
        return {"notifications_queued": [row_id]}

    def on_changes(self, conn: Connection, changes: Sequence[Change]) -> list[dict[str, Any]]:
        """:meth:`on_change` for many changes (a bulk import): their rows in one
        ``executemany``, the extras in order.  A creation takes no transition, so
        it queues nothing."""
        notices = [(i, self.notice(c)) for i, c in enumerate(changes) if _notifies(c)]
        extras: list[dict[str, Any]] = [{} for _ in changes]
        if not notices:
            return extras
        ids = enqueue_many(conn, [n for _, n in notices])
        for (i, _), row_id in zip(notices, ids, strict=True):
            extras[i] = {"notifications_queued": [row_id]}
        return extras

    def notice(self, change: Change) -> dict[str, Any]:
        """The :func:`enqueue` arguments of the notification *change*'s transition sends."""
        t = change.transition
        assert t is not None
        return dict(
            case_id=change.case_id,
            kind="transition",
            roles=[str(r) for r in t.notify],
            template=t.template,
            context={
                "event": {
                    "trigger": t.trigger,
                    "title": t.label,
                    "actor": change.actor,
                    "payload": change.payload,
                    "from": change.from_state,
                    "to": change.to_state,
                    "seq": change.seq,
                },
                "snapshot": {"state": change.to_state, "data": change.data, "escalation_level": 0},
            },
            dedupe_key=f"{change.case_id}:{change.seq}:transition",
            at=change.at,
            priority=URGENT if t.urgent else NORMAL,
        )


def _notifies(change: Change) -> bool:
    return change.transition is not None and bool(change.transition.notify)


def enqueue_many(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert pending notifications in one ``executemany`` (a bulk import, the timer
    sweep's batch); their ids, in order.  Each row has the keyword arguments of
    :func:`enqueue`."""
    if not rows:
        return []
    ids = conn.execute(
        insert(notifications).returning(notifications.c.id, sort_by_parameter_order=True),
        [_row(**r) for r in rows],
    ).scalars()
    mark(conn)
    return list(ids)
