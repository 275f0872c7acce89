"""The dispatcher's statements, built once with bound parameters.

Building a Core statement costs more than running it: the due condition alone
(``status IN … AND (… OR …)``) took ~170 µs to build and ~50 µs to run on
SQLite, and a backlog probe, a claim, an expansion and a message each built
several.  Here each is built once; a call passes its values (``now``, the
channel, the ids) as parameters, so SQLAlchemy's compiled cache serves every
call.  Writes whose result is only a row count go through
:class:`~engine.store.prepared.Prepared`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)

from engine.store.prepared import Prepared
from engine.store.tables import cases, deliveries, notifications, units

__all__ = [
    "DELIVERY_COLUMNS",
    "DUE",
    "EXISTING_KEYS",
    "INSERT_DELIVERIES",
    "NOTIFICATION",
    "SETTLE_LEFT",
    "TAKE_LEASE",
    "backlog_query",
    "claim_query",
    "outcome_update",
    "pending_query",
    "set_notification_status",
]

_d = deliveries.c
_now = bindparam("now", type_=_d.next_attempt_at.type)

# Deliveries to send now: pending and due, or a dead dispatcher's lapsed lease.  The
# ``status IN`` comes first so the (channel, status, …) index reads only the rows still
# to send, never every row a channel ever sent (tests/test_dispatch_scaling.py).
DUE = and_(
    _d.status.in_(("pending", "sending")),
    or_(
        (_d.status == "pending") & (_d.next_attempt_at <= _now),
        (_d.status == "sending") & (_d.claimed_until < _now),
    ),
)

# -- the backlog: cheap probes (LIMIT 1 on an index), all in one statement --------


def backlog_query(channels: Sequence[str]) -> Select[Any]:
    """One row: whether a notification is pending (``waiting``), whether each of
    *channels* has a delivery due (``due_0``, ``due_1``, … in their order) and whether a
    channel not among them has one (``due_elsewhere``), then the earliest later retry
    (``next_retry``) and lease end (``next_lease_end``) — for ``:now``.  Each probe is
    a scalar subquery on its own index, so a large backlog costs nothing here."""

    def probe(*where: ColumnElement[bool]) -> Any:
        return select(_d.id).where(*where, DUE).limit(1).scalar_subquery()

    waiting = select(notifications.c.id).where(notifications.c.status == "pending").limit(1)
    next_retry = select(func.min(_d.next_attempt_at)).where(
        _d.status == "pending", _d.next_attempt_at > _now
    )
    next_lease_end = select(func.min(_d.claimed_until)).where(
        _d.status == "sending", _d.claimed_until >= _now
    )
    return select(
        waiting.scalar_subquery().label("waiting"),
        *(probe(_d.channel == name).label(f"due_{i}") for i, name in enumerate(channels)),
        probe(_d.channel.not_in(list(channels))).label("due_elsewhere"),
        next_retry.scalar_subquery().label("next_retry"),
        next_lease_end.scalar_subquery().label("next_lease_end"),
    )


# -- expansion --------------------------------------------------------------


def pending_query(batch: int) -> Select[Any]:
    """Up to *batch* pending notifications, urgent first, each with the unit whose chain
    resolves its roles (``notice_unit``: its own ``unit_code``, else its case's) and that
    unit's materialized path (``notice_path``), read in the same statement."""
    n = notifications.c
    # correlated to the notification row explicitly: nested two deep, auto-correlation
    # would read every notification in the inner query
    case_unit = (
        select(cases.c.unit_code)
        .where(cases.c.id == n.case_id)
        .correlate(notifications)
        .scalar_subquery()
    )
    unit = func.coalesce(n.unit_code, case_unit)
    path = (
        select(units.c.path).where(units.c.code == unit).correlate(notifications).scalar_subquery()
    )
    return (
        select(notifications, unit.label("notice_unit"), path.label("notice_path"))
        .where(n.status == "pending")
        .order_by(n.priority.desc(), n.id)
        .limit(batch)
    )


EXISTING_KEYS = select(_d.dedupe_key).where(_d.dedupe_key.in_(bindparam("keys", expanding=True)))
DELIVERY_COLUMNS = (
    "notification_id",
    "person_id",
    "channel",
    "address",
    "dedupe_key",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "priority",
)
INSERT_DELIVERIES = Prepared(insert(deliveries), DELIVERY_COLUMNS)
_SET_STATUS = Prepared(
    update(notifications)
    .where(notifications.c.id == bindparam("p_id"))
    .values(status=bindparam("p_status")),
    ("p_id", "p_status"),
)


def set_notification_status(conn: Connection, notification_id: int, status: str) -> None:
    _SET_STATUS.execute(conn, {"p_id": notification_id, "p_status": status})


# -- claims and outcomes ------------------------------------------------------
def claim_query(kind: str) -> Select[Any]:
    """Due deliveries, urgent first, up to ``:limit``: of any channel (*kind* ``any``), of
    ``:channel`` (``one``), or of none of ``:channels`` (``elsewhere``: not configured)."""
    query = select(deliveries).where(DUE)
    if kind == "one":
        query = query.where(_d.channel == bindparam("channel"))
    elif kind == "elsewhere":
        query = query.where(_d.channel.not_in(bindparam("channels", expanding=True)))
    query = query.order_by(_d.priority.desc(), _d.next_attempt_at, _d.id)
    return query.limit(bindparam("limit", type_=Integer))


TAKE_LEASE = Prepared(
    update(deliveries)
    .where(_d.id == bindparam("p_id"), _d.status == bindparam("p_status"))
    .values(
        status="sending",
        claimed_until=bindparam("claimed_until"),
        claimed_by=bindparam("claimed_by"),
        attempts=bindparam("attempts"),
    ),
    ("p_id", "p_status", "claimed_until", "claimed_by", "attempts"),
)
_OUTCOMES: dict[tuple[str, ...], Prepared] = {}


def outcome_update(columns: tuple[str, ...]) -> Prepared:
    """``UPDATE deliveries SET <columns> WHERE id = :p_id``, one per set of columns (a
    send's outcome sets one of three), built on first use."""
    found = _OUTCOMES.get(columns)
    if found is None:
        stmt = update(deliveries).where(_d.id == bindparam("p_id"))
        found = _OUTCOMES.setdefault(columns, Prepared(stmt, (*columns, "p_id")))
    return found


SETTLE_LEFT = (
    select(_d.id)
    .where(
        _d.notification_id == bindparam("notification_id"),
        _d.status.in_(("pending", "sending")),
    )
    .limit(1)
)

# -- a message -----------------------------------------------------------------
NOTIFICATION = select(notifications).where(notifications.c.id == bindparam("id"))
