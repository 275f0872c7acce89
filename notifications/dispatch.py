"""The dispatcher: outbox rows → recipients on the grid → channels, with retries.

Two steps, each safe to run in several processes at once:

1. **expand** — a pending notification is resolved to people *now*, like a
   permission check: the holders of each ``notify`` role on the case unit's
   chain.  Each (channel, address) a person can be reached at becomes a
   delivery row with a stable dedupe key (cause × channel × address).  A role
   that resolves to nobody is recorded (``undeliverable`` when nobody at all
   is reachable) and logged as a warning, never silently dropped.
2. **send** — due deliveries are claimed with a lease (``FOR UPDATE SKIP
   LOCKED`` on PostgreSQL), the claim committed, then each is rendered and
   sent outside any transaction (a slow endpoint holds no lock), and marked
   ``sent`` (the outcomes of sends finishing together share one commit:
   :mod:`notifications.outcomes`); a failure is retried with exponential backoff and jitter up to
   ``max_attempts``, then marked ``dead`` (retry by hand with ``retry``).  A
   dispatcher that dies mid-send loses its lease; the row is sent again under
   the same dedupe key, which receivers use to drop the repeat.

Expansions, claims and outcomes commit without waiting for the disk
(:func:`engine.store.db.lazy_commit`): a power loss can take back only the last
of them, and each is then redone — a message sent again under its dedupe key,
as after a dispatcher that died mid-send.  The notification itself was
committed durably with its case's change.

Urgent rows (``priority`` 1, from transitions marked ``urgent: true``) are
expanded and claimed before the others.  :meth:`Dispatcher.run_once` does
one pass in the calling thread, one send after another;
:class:`~notifications.dispatch_loop.DispatchLoop` (``gengbao serve``, and
``notifications dispatch --once``) claims each channel's rows on its own
(:meth:`Dispatcher.claim`) and sends them on that channel's own threads.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, or_, select, update

from engine.clock import Clock
from engine.errors import NotFound, UnknownCase, UnknownUnit
from engine.grid import registry as grid
from engine.grid.visibility import ADMIN, Viewer, as_viewer, visible
from engine.process import worker_id
from engine.store import connection, skip_locked, transaction
from engine.store.db import lazy_commit, read_only
from engine.store.tables import (
    cases,
    deliveries,
    notification_reads,
    notifications,
    units,
)
from notifications import dispatch_statements as sql
from notifications.channels.base import Channel, DeliveryFailed, Message, Recipient
from notifications.dispatch_policy import DispatchPolicy
from notifications.outcomes import GroupCommit
from notifications.recently_read import RecentlyRead
from notifications.render import CaseContext
from notifications.templates import TemplateStore

__all__ = ["UNCONFIGURED", "Backlog", "DispatchPolicy", "Dispatcher", "Expansion", "Sent"]

log = logging.getLogger(__name__)

UNCONFIGURED = "(unconfigured)"  # claim(): deliveries of channels not configured any more
# A notification's message context (its case, the unit chain, the actor's name) is read
# once for the deliveries that send it within this many seconds of each other; so is a
# recipient's row for the messages it gets within them.
CONTEXT_SECONDS = 1.0


@dataclass(frozen=True, kw_only=True)
class Backlog:
    """What there is to do, read without taking a lock."""

    pending_notifications: bool
    due_channels: frozenset[str]  # channels with deliveries due now (or a lapsed lease)
    next_due: dt.datetime | None  # the earliest later retry or lease expiry

    @property
    def idle(self) -> bool:
        return not self.pending_notifications and not self.due_channels


@dataclass(frozen=True)
class Expansion:
    """What one expansion did: notifications expanded (or marked dead), and the channels
    of the deliveries it planned (due now)."""

    notifications: int
    channels: frozenset[str]


@dataclass(frozen=True)
class _Outcome:
    """What a send changes on its delivery row."""

    delivery_id: int
    notification_id: int
    values: dict[str, Any]


@dataclass(frozen=True)
class Sent:
    delivery_id: int
    channel: str
    address: str
    status: str  # sent | pending (will retry) | dead
    attempts: int
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.delivery_id,
            "channel": self.channel,
            "address": self.address,
            "status": self.status,
            "attempts": self.attempts,
            "error": self.error,
        }


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        channels: Mapping[str, Channel],
        templates: TemplateStore,
        context: CaseContext,
        policy: DispatchPolicy | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.channels = dict(channels)
        self.templates = templates
        self.context = context
        self.policy = policy or DispatchPolicy()
        self.worker = worker_id()
        self._rng = random.Random(seed)
        # Expansions, claims and outcomes are redone safely if lost: they commit lazily.
        self._bookkeeping = lazy_commit(engine)
        # Sends on a lane's threads record their outcomes together (notifications/outcomes.py).
        self._outcomes: GroupCommit[_Outcome] = GroupCommit(
            lambda: transaction(self._bookkeeping), self._write_outcomes
        )
        # Built once (notifications/dispatch_statements.py): building cost more than running.
        self._pending = skip_locked(sql.pending_query(self.policy.batch), engine)
        self._claims = {
            kind: skip_locked(sql.claim_query(kind), engine) for kind in ("any", "one", "elsewhere")
        }
        self._channel_names = sorted(self.channels)
        # A notification's context, read once for its deliveries sent together.
        self._recent: RecentlyRead[int, tuple[Any, dict[str, Any]]] = RecentlyRead(CONTEXT_SECONDS)
        self._people: RecentlyRead[str, grid.PersonRow] = RecentlyRead(CONTEXT_SECONDS)
        self._backlog = sql.backlog_query(self._channel_names)

    # -- the loop body ---------------------------------------------------
    def run_once(self) -> list[Sent]:
        """Expand every pending notification, then send every due delivery."""
        while self.expand():
            pass
        results: list[Sent] = []
        while batch := self.send_due():
            results.extend(batch)
        return results

    # -- step 1: notifications → deliveries ----------------------------
    def expand(self) -> int:
        """Expand a batch of pending notifications; how many."""
        return self.expand_batch().notifications

    def expand_batch(self) -> Expansion:
        """Expand a batch of pending notifications in one transaction.

        The batch is tried without savepoints (two statements each, which
        SQLAlchemy compiles anew every time).  If any row fails, that transaction
        is rolled back and the batch is expanded again, each row under its own
        savepoint, so one bad row is marked dead and holds back none of the others.
        """
        channels: set[str] = set()
        try:
            with transaction(self._bookkeeping) as conn:
                rows = conn.execute(self._pending).all()
                for row in rows:
                    channels |= self._expand_one(conn, row)
            return Expansion(len(rows), frozenset(channels))
        except Exception:  # each row is tried again alone below
            channels.clear()
        with transaction(self._bookkeeping) as conn:
            rows = conn.execute(self._pending).all()
            for row in rows:
                try:
                    with conn.begin_nested():
                        channels |= self._expand_one(conn, row)
                except Exception as exc:  # one bad row must not hold back the batch
                    log.warning(
                        "notification %s (%s): cannot expand; marked dead: %s: %s",
                        row.id,
                        row.kind,
                        type(exc).__name__,
                        exc,
                        exc_info=log.isEnabledFor(logging.DEBUG),
                    )
                    sql.set_notification_status(conn, row.id, "dead")
        return Expansion(len(rows), frozenset(channels))

    def _expand_one(self, conn: Connection, row: Any) -> set[str]:
        """Plan and insert *row*'s deliveries; the channels they are due on."""
        now = self.clock.now()
        # the unit is the notice's own (a patrol notice, or one to a transfer's receiver)
        # or its case's; the pending query read it and its path (sql.pending_query)
        unit = row.notice_unit
        if unit is None:
            raise UnknownCase(row.case_id)
        if row.notice_path is None:
            raise UnknownUnit(unit)
        by_role = grid.holders_by_role(
            conn, unit, row.roles, include_inactive=True, path=row.notice_path
        )
        planned: list[dict[str, Any]] = []  # in the order of the roles, people, channels
        seen: set[str] = set()
        made = 0
        for role in row.roles:
            everyone = by_role[role]
            if not any(p.active for p in everyone):
                log.warning(
                    "notification %s (%s, case %s): role %s resolves to nobody on %s",
                    row.id,
                    row.kind,
                    row.case_id,
                    role,
                    unit,
                )
            for person in everyone:
                if person.id in seen:
                    continue
                seen.add(person.id)
                if person.active:
                    found = self._deliveries_for(row, _recipient(person), now)
                    made += len(found)
                    planned += found
                else:  # deactivated since: recorded as skipped, not silently lost
                    planned.append(
                        _delivery(row, person.id, "-", person.id, now, "skipped", "deactivated")
                    )
        self._insert_new(conn, planned)
        status = "expanded" if made else "undeliverable"
        if not made:
            log.warning(
                "notification %s (%s, case %s) reaches nobody: roles %s",
                row.id,
                row.kind,
                row.case_id,
                ", ".join(row.roles),
            )
        sql.set_notification_status(conn, row.id, status)
        return {d["channel"] for d in planned if d["status"] == "pending"}

    def _deliveries_for(
        self, row: Any, recipient: Recipient, now: dt.datetime
    ) -> list[dict[str, Any]]:
        found = []
        for name, channel in self.channels.items():
            address = channel.address(recipient)
            if address:
                found.append(_delivery(row, recipient.id, name, address, now, "pending"))
        return found

    @staticmethod
    def _insert_new(conn: Connection, planned: list[dict[str, Any]]) -> None:
        """Insert the planned deliveries not already there — a re-expansion after a lost
        commit finds some, and a group's address (one webhook for everyone) is planned
        once per person — with one read of their keys and one ``executemany``."""
        if not planned:
            return
        keys = sorted({d["dedupe_key"] for d in planned})
        seen = set(conn.execute(sql.EXISTING_KEYS, {"keys": keys}).scalars())
        new = []
        for delivery in planned:
            if delivery["dedupe_key"] not in seen:
                seen.add(delivery["dedupe_key"])
                new.append(delivery)
        sql.INSERT_DELIVERIES.executemany(conn, new)

    # -- step 2: deliveries → channels ---------------------------------
    def send_due(self) -> list[Sent]:
        """Claim a batch of due deliveries (any channel) and send them one by one."""
        return [self.deliver(row) for row in self.claim()]

    def claim(self, channel: str | None = None, limit: int | None = None) -> list[Any]:
        """Lease up to *limit* due deliveries (of *channel*, or any), urgent ones first.

        *channel* :data:`UNCONFIGURED` takes those of channels no longer
        configured (sending them fails, and they go dead, visibly).

        The claim commits before anything is sent; each returned row must be
        passed to :meth:`deliver`.  A lease that runs out (its dispatcher
        died) makes the row due again, to be sent under the same dedupe key.
        """
        now = self.clock.now()
        kind = "any" if channel is None else "elsewhere" if channel == UNCONFIGURED else "one"
        params = {
            "now": now,
            "limit": limit or self.policy.batch,
            "channel": channel,
            "channels": self._channel_names,
        }
        lease = now + dt.timedelta(seconds=self.policy.lease_seconds)
        claimed = []
        with transaction(self._bookkeeping) as conn:
            for row in conn.execute(self._claims[kind], params).all():
                won = sql.TAKE_LEASE.execute(
                    conn,
                    {
                        "p_id": row.id,
                        "p_status": row.status,
                        "claimed_until": lease,
                        "claimed_by": self.worker,
                        "attempts": row.attempts + 1,
                    },
                ).rowcount
                if won == 1:
                    claimed.append(row)
        return claimed

    def backlog(self) -> Backlog:
        """Pending notifications, the channels with due deliveries, the next due time.

        One statement: a cheap probe per configured channel (``LIMIT 1`` on the
        channel's index), so a large backlog costs nothing here; deliveries of a
        channel that is no longer configured show up as :data:`UNCONFIGURED`.
        """
        names = self._channel_names
        with connection(read_only(self.engine)) as conn:
            found = conn.execute(self._backlog, {"now": self.clock.now()}).one()
        due = found._mapping
        due_channels = {name for i, name in enumerate(names) if due[f"due_{i}"] is not None}
        if found.due_elsewhere is not None:
            due_channels.add(UNCONFIGURED)
        times = [t for t in (found.next_retry, found.next_lease_end) if t is not None]
        return Backlog(
            pending_notifications=found.waiting is not None,
            due_channels=frozenset(due_channels),
            next_due=min(times) if times else None,
        )

    def deliver(self, row: Any) -> Sent:
        """Render and send one claimed delivery, then record the outcome."""
        return self._send(row)

    def _send(self, row: Any) -> Sent:
        attempts = row.attempts + 1
        channel = self.channels.get(row.channel)
        try:
            if channel is None:
                raise DeliveryFailed(f"channel {row.channel!r} is not configured", retryable=True)
            message = self._message(row)
            channel.send(message, row.address)
        except DeliveryFailed as exc:
            return self._failed(row, attempts, exc.reason, exc.retryable)
        except Exception as exc:  # a template or context bug must not stop the loop
            # One line with the cause; the traceback only when debugging (--verbose).
            log.warning(
                "delivery %s: cannot build the message: %s: %s",
                row.id,
                type(exc).__name__,
                exc,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            return self._failed(row, attempts, f"{type(exc).__name__}: {exc}", False)
        now = self.clock.now()
        values = {"status": "sent", "sent_at": now, "claimed_until": None, "last_error": None}
        self._outcomes.record(_Outcome(row.id, row.notification_id, values))
        return Sent(row.id, row.channel, row.address, "sent", attempts)

    def _failed(self, row: Any, attempts: int, reason: str, retryable: bool) -> Sent:
        now = self.clock.now()
        dead = not retryable or attempts >= self.policy.max_attempts
        status = "dead" if dead else "pending"
        values: dict[str, Any] = {
            "status": status,
            "last_error": reason[:1000],
            "claimed_until": None,
        }
        if not dead:
            delay = self.policy.delay(attempts, self._rng)
            values["next_attempt_at"] = now + dt.timedelta(seconds=delay)
        self._outcomes.record(_Outcome(row.id, row.notification_id, values))
        level = logging.ERROR if dead else logging.WARNING
        log.log(
            level,
            "delivery %s via %s to %s failed (attempt %d): %s%s",
            row.id,
            row.channel,
            row.address,
            attempts,
            reason,
            " — dead" if dead else "",
        )
        return Sent(row.id, row.channel, row.address, status, attempts, reason)

    def _write_outcomes(self, conn: Connection, outcomes: Sequence[_Outcome]) -> None:
        """The outcomes of sends, in one transaction (:class:`GroupCommit`); then each
        notification whose deliveries all ended is ``sent``."""
        for outcome in outcomes:
            columns = tuple(outcome.values)
            sql.outcome_update(columns).execute(
                conn, {**outcome.values, "p_id": outcome.delivery_id}
            )
        sent = {o.notification_id for o in outcomes if o.values["status"] == "sent"}
        for notification_id in sorted(sent):
            self._settle(conn, notification_id)

    def _settle(self, conn: Connection, notification_id: int) -> None:
        left = conn.execute(sql.SETTLE_LEFT, {"notification_id": notification_id}).first()
        if left is None:
            sql.set_notification_status(conn, notification_id, "sent")

    def _message(self, row: Any) -> Message:
        person = self._people.get(row.person_id, lambda: self._read_person(row.person_id))
        note, context = self._recent.get(
            row.notification_id, lambda: self._read_context(row.notification_id)
        )
        recipient = _recipient(person)
        context = self.context.with_recipient(context, recipient)
        rendered = self.templates.render(note.template, note.kind, context)
        return Message(
            subject=rendered["subject"],
            body=rendered["body"],
            short=rendered["short"],
            recipient=recipient,
            dedupe_key=row.dedupe_key,
            case_id=note.case_id,
            kind=note.kind,
        )

    def _read_context(self, notification_id: int) -> tuple[Any, dict[str, Any]]:
        with connection(read_only(self.engine)) as conn:  # beside writers, not behind them
            note = conn.execute(sql.NOTIFICATION, {"id": notification_id}).one()
            return note, self.context.build(conn, note, self.clock.now())

    def _read_person(self, person_id: str) -> grid.PersonRow:
        with connection(read_only(self.engine)) as conn:
            return grid.get_person(conn, person_id)

    # -- administration --------------------------------------------------
    def retry(self, delivery_id: int) -> None:
        """Put a dead delivery back in the queue, due now."""
        with transaction(self.engine) as conn:
            row = conn.execute(
                select(deliveries.c.status).where(deliveries.c.id == delivery_id)
            ).one_or_none()
            if row is None:
                raise NotFound(f"unknown delivery {delivery_id}", delivery=delivery_id)
            if row.status != "dead":
                raise NotFound(
                    f"delivery {delivery_id} is {row.status}, not dead", delivery=delivery_id
                )
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(status="pending", next_attempt_at=self.clock.now(), attempts=0)
            )

    def list(
        self,
        status: str | None = None,
        case: str | None = None,
        limit: int = 100,
        *,
        within: Sequence[str] | None = None,
        after: int | None = None,
        viewer: Viewer | str = ADMIN,
    ) -> list[dict[str, Any]]:
        """Deliveries, oldest first, *limit* at most after the id *after*.

        *viewer*: only deliveries about cases (or, for patrol notices, units) it
        sees (:mod:`engine.grid.visibility`); a *case* it does not see is UnknownCase.
        *within*: further, only those in the subtrees of these unit codes; None:
        everywhere.  Both scopes are in the query, so a page is full whatever
        the other units hold.
        """
        d, n = deliveries.c, notifications.c
        query = (
            select(
                d.id,
                d.status,
                d.channel,
                d.address,
                d.person_id,
                d.attempts,
                d.next_attempt_at,
                d.last_error,
                d.sent_at,
                n.case_id,
                n.kind,
                n.template,
                d.notification_id,
                notification_reads.c.acked_at.label("read_at"),
            )
            .join(notifications, n.id == d.notification_id)
            .outerjoin(  # who read it (notifications ack)
                notification_reads,
                (notification_reads.c.notification_id == d.notification_id)
                & (notification_reads.c.person_id == d.person_id),
            )
            .order_by(d.id)
            .limit(limit)
        )
        if status is not None:
            query = query.where(d.status == status)
        if case is not None:
            query = query.where(n.case_id == case)
        if after is not None:
            query = query.where(d.id > after)
        case_unit, notice_unit = units.alias("case_unit"), units.alias("notice_unit")
        if within is not None or not as_viewer(viewer).everything:
            query = (
                query.outerjoin(cases, cases.c.id == n.case_id)
                .outerjoin(case_unit, case_unit.c.code == cases.c.unit_code)
                .outerjoin(notice_unit, notice_unit.c.code == n.unit_code)
            )
        if not as_viewer(viewer).everything:
            query = query.where(
                or_(
                    visible(viewer, case_unit.c.path),
                    n.case_id.is_(None) & visible(viewer, notice_unit.c.path),
                )
            )
        with connection(read_only(self.engine)) as conn:
            if case is not None and not as_viewer(viewer).everything:
                seen = conn.execute(
                    select(cases.c.id)
                    .join(units, units.c.code == cases.c.unit_code)
                    .where(cases.c.id == case, visible(viewer, units.c.path))
                ).first()
                if seen is None:
                    raise UnknownCase(case)
            if within is not None:
                prefixes = list(
                    conn.execute(select(units.c.path).where(units.c.code.in_(within))).scalars()
                )
                if not prefixes:
                    return []
                query = query.where(
                    or_(
                        *(grid.in_subtree(case_unit.c.path, p) for p in prefixes),
                        *(
                            grid.in_subtree(notice_unit.c.path, p) & n.case_id.is_(None)
                            for p in prefixes
                        ),
                    )
                )
            return [
                {
                    "id": r.id,
                    "status": r.status,
                    "channel": r.channel,
                    "address": r.address,
                    "person": r.person_id,
                    "attempts": r.attempts,
                    "next_attempt_at": r.next_attempt_at.isoformat(),
                    "last_error": r.last_error,
                    "sent_at": r.sent_at.isoformat() if r.sent_at else None,
                    "case": r.case_id,
                    "kind": r.kind,
                    "template": r.template,
                    "notification": r.notification_id,
                    "read_at": r.read_at.isoformat() if r.read_at else None,
                }
                for r in conn.execute(query)
            ]


def _delivery(
    row: Any,
    person_id: str,
    channel: str,
    address: str,
    now: dt.datetime,
    status: str,
    error: str | None = None,
) -> dict[str, Any]:
    """A delivery row of notification *row*; its dedupe key is the cause × channel × address
    (a skipped person's: the cause × ``skipped`` × the person)."""
    if status == "skipped":
        key = f"{row.dedupe_key}:skipped:{person_id}"
    else:
        key = f"{row.dedupe_key}:{channel}:{address}"
    return {
        "notification_id": row.id,
        "person_id": person_id,
        "channel": channel,
        "address": address,
        "dedupe_key": key,
        "status": status,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": error,
        "created_at": now,
        "priority": row.priority if status == "pending" else 0,
    }


def _recipient(person: Any) -> Recipient:
    return Recipient(person.id, person.name, person.email, person.phone, person.webhook)
