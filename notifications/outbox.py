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
    row_id: int = conn.execute(
        insert(notifications)
        .values(
            case_id=case_id,
            unit_code=unit_code,
            kind=kind,
            template=template or GENERIC[kind],
            roles=sorted(set(roles)),
            context=dict(context),
            dedupe_key=dedupe_key,
            status="pending",
            created_at=at,
            priority=priority,
        )
        .returning(notifications.c.id)
    ).scalar_one()
    mark(conn)
    return row_id


class TransitionNotifications:
    """Effects hook: a transition with ``notify`` queues its notification."""

    def on_change(self, conn: Connection, change: Change) -> dict[str, Any]:
        t = change.transition
        if t is None or not t.notify:
            return {}
        row_id = enqueue(
            conn,
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
        return {"notifications_queued": [row_id]}


def enqueue_many(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert pending notifications in one ``executemany`` (the timer sweep's batch).

    Each row has the keyword arguments of :func:`enqueue` (``case_id``, ``kind``,
    ``roles``, ``template``, ``context``, ``dedupe_key``, ``at``; optionally
    ``unit_code`` and ``priority``); no ids are returned."""
    if not rows:
        return
    conn.execute(
        insert(notifications),
        [
            {
                "case_id": r["case_id"],
                "unit_code": r.get("unit_code"),
                "kind": r["kind"],
                "template": r.get("template") or GENERIC[r["kind"]],
                "roles": sorted(set(r["roles"])),
                "context": dict(r["context"]),
                "dedupe_key": r["dedupe_key"],
                "status": "pending",
                "created_at": r["at"],
                "priority": r.get("priority", NORMAL),
            }
            for r in rows
        ],
    )
    mark(conn)
