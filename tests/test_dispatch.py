"""The outbox and dispatcher end to end: real SMTP and HTTP receivers on loopback.

The clock is fake; retries are driven by moving it past each backoff, never
by sleeping.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from engine.app import App
from engine.cases.service import Change
from engine.clock import FixedClock
from engine.store.tables import deliveries, notifications
from tests.support.databases import Database
from tests.support.farmland import CASE_DATA, LIFECYCLE, REPORTER, SH, UNIT, farmland_app, open_case
from tests.support.receivers import HttpReceiver, Reply, SmtpReceiver, free_port

SECRET = "s3cret"


def notification_settings(channels: dict[str, Any]) -> dict[str, Any]:
    return {
        "base_url": "https://gengbao.example.org",
        "channels": channels,
        "retry": {"max_attempts": 3, "backoff_seconds": 60},
    }


def make_app(database: Database, clock: FixedClock, channels: dict[str, Any]) -> App:
    return farmland_app(database.url, clock, notifications=notification_settings(channels))


def channels(smtp: SmtpReceiver, hook: HttpReceiver) -> dict[str, Any]:
    return {
        "email": {
            "host": smtp.host,
            "port": smtp.port,
            "security": "none",
            "sender": "耕保通知 <noreply@example.org>",
            "timeout": 5,
        },
        "webhook": {"url": hook.url("/hook"), "secret": SECRET, "timeout": 0.5},
    }


@pytest.fixture
def app_settings(smtp: SmtpReceiver, hook: HttpReceiver) -> dict[str, Any]:
    return {"notifications": notification_settings(channels(smtp, hook))}


def deliveries_of(app: App, channel: str | None = None) -> list[Any]:
    query = sa.select(deliveries).order_by(deliveries.c.id)
    if channel is not None:
        query = query.where(deliveries.c.channel == channel)
    with app.engine.connect() as conn:
        return list(conn.execute(query))


def test_a_transition_reaches_the_right_people_in_chinese(
    app: App, smtp: SmtpReceiver, hook: HttpReceiver
) -> None:
    case_id = open_case(app)
    trigger, actor, payload, _ = LIFECYCLE[0]
    app.cases.submit_event(case_id, trigger, actor, payload)  # stop_fail: notify town + village
    results = app.dispatcher.run_once()
    assert results and {r.status for r in results} == {"sent"}
    # town.duty, town.office, village.leader of 八桥镇 / 新华村 in the demo grid
    people = {r.person_id for r in deliveries_of(app, "email")}
    assert people == {"p-bq-duty", "p-bq-office", "p-bq-xh-leader"}
    mails = smtp.messages
    assert len(mails) == 3
    subject = str(mails[0].message["Subject"])
    body = mails[0].message.get_content()
    assert case_id in subject + body
    assert "制止无效" in subject + body
    assert "八桥镇" in body and "新华村" in body
    assert mails[0].message["Message-ID"]
    # the group webhook got the same notification once, signed
    assert len(hook.requests) == 1
    request = hook.requests[0]
    signature = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-gengbao-signature"] == f"sha256={signature}"
    assert request.json()["case"] == case_id
    assert app.dispatcher.run_once() == []  # nothing twice


def test_past_a_deadline_the_town_hears_of_it(
    app: App, clock: FixedClock, smtp: SmtpReceiver
) -> None:
    case_id = open_case(app)
    clock.set(datetime(2026, 9, 18, 12, 5, tzinfo=SH))
    app.timers.run_due()  # two reminders, the deadline, rung 1 (notify town.office, town.duty…)
    app.dispatcher.run_once()
    subjects = [str(m.message["Subject"]) for m in smtp.messages]
    escalations = [
        m
        for m in smtp.messages
        if "超时" in str(m.message["Subject"]) or "逾期" in str(m.message["Subject"])
    ]
    assert escalations, subjects
    to = {addr for m in escalations for addr in m.rcpt_tos}
    assert any("bq" in a for a in to)  # town people of 八桥镇
    assert all(case_id in m.message.get_content() for m in escalations)


def test_an_endpoint_that_fails_twice_then_succeeds(
    app: App, clock: FixedClock, hook: HttpReceiver
) -> None:
    hook.reply(Reply(500), Reply(503))
    case_id = open_case(app)
    trigger, actor, payload, _ = LIFECYCLE[0]
    app.cases.submit_event(case_id, trigger, actor, payload)
    for _ in range(3):
        app.dispatcher.run_once()
        clock.advance(timedelta(minutes=5))  # past the 60 s (then 120 s) backoff
    [row] = deliveries_of(app, "webhook")
    assert (row.status, row.attempts) == ("sent", 3)
    keys = Counter(r.headers["x-gengbao-dedupe-key"] for r in hook.requests)
    assert list(keys.values()) == [3]  # one message, three attempts, one key


def test_a_hanging_endpoint_times_out_and_is_retried_later(
    app: App, clock: FixedClock, hook: HttpReceiver
) -> None:
    hook.reply(Reply(200, delay=10))
    case_id = open_case(app)
    trigger, actor, payload, _ = LIFECYCLE[0]
    app.cases.submit_event(case_id, trigger, actor, payload)
    results = app.dispatcher.run_once()
    webhook = [r for r in results if r.channel == "webhook"]
    assert [r.status for r in webhook] == ["pending"]
    assert "timed out" in webhook[0].error.lower() or "timeout" in webhook[0].error.lower()
    emails = [r for r in results if r.channel == "email"]
    assert {r.status for r in emails} == {"sent"}  # a slow endpoint delays only its own
    [row] = deliveries_of(app, "webhook")
    assert row.next_attempt_at > clock.now()
    clock.advance(timedelta(minutes=5))
    assert [r.status for r in app.dispatcher.run_once()] == ["sent"]


def test_a_down_endpoint_goes_dead_then_a_manual_retry_delivers(
    database: Database, clock: FixedClock
) -> None:
    port = free_port()
    app = make_app(
        database, clock, {"webhook": {"url": f"http://127.0.0.1:{port}/hook", "timeout": 0.5}}
    )
    try:
        case_id = open_case(app)
        trigger, actor, payload, _ = LIFECYCLE[0]
        app.cases.submit_event(case_id, trigger, actor, payload)
        for _ in range(3):
            app.dispatcher.run_once()
            clock.advance(timedelta(hours=1))
        [row] = deliveries_of(app)
        assert (row.status, row.attempts) == ("dead", 3)
        assert [d["id"] for d in app.dispatcher.list(status="dead")] == [row.id]
        with HttpReceiver(port=port) as hook:
            app.dispatcher.retry(row.id)
            assert [r.status for r in app.dispatcher.run_once()] == ["sent"]
            assert len(hook.requests) == 1
    finally:
        app.close()


def test_a_crash_between_commit_and_send_sends_after_restart_once(
    database: Database, clock: FixedClock, app: App, smtp: SmtpReceiver, hook: HttpReceiver
) -> None:
    case_id = open_case(app)
    trigger, actor, payload, _ = LIFECYCLE[0]
    app.cases.submit_event(case_id, trigger, actor, payload)
    app.dispatcher.expand()
    claimed = app.dispatcher.claim()  # a dispatcher claims, then dies before sending
    assert claimed
    restarted = make_app(database, clock, channels(smtp, hook))
    try:
        assert restarted.dispatcher.run_once() == []  # the dead one's lease still holds
        clock.advance(timedelta(minutes=10))  # the lease (5 min) runs out
        sent = restarted.dispatcher.run_once()
        assert {r.status for r in sent} == {"sent"}
        assert len(smtp.messages) + len(hook.requests) == len(claimed)
    finally:
        restarted.close()


def test_nothing_is_sent_for_an_event_that_did_not_commit(
    app: App, hook: HttpReceiver, smtp: SmtpReceiver
) -> None:
    case_id = open_case(app)

    class Boom:
        def on_change(self, conn: sa.Connection, change: Change) -> dict[str, Any]:
            raise RuntimeError("crash after the outbox row was written")

    app.cases.effects.append(Boom())
    trigger, actor, payload, _ = LIFECYCLE[0]
    with pytest.raises(RuntimeError):
        app.cases.submit_event(case_id, trigger, actor, payload)
    app.cases.effects.pop()
    with app.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(notifications)).scalar() == 0
    assert app.dispatcher.run_once() == []
    assert hook.requests == [] and smtp.messages == []


def test_a_role_that_resolves_to_nobody_is_recorded(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    case_id = open_case(app)
    with app.engine.begin() as conn:  # the town office and duty staff leave, the village leader too
        conn.execute(
            sa.text(
                "UPDATE people SET active = false WHERE id IN "
                "('p-bq-duty', 'p-bq-office', 'p-bq-xh-leader')"
            )
        )
    trigger, actor, payload, _ = LIFECYCLE[0]
    app.cases.submit_event(case_id, trigger, actor, payload)
    with caplog.at_level(logging.WARNING):
        app.dispatcher.run_once()
    with app.engine.connect() as conn:
        statuses = [s for (s,) in conn.execute(sa.select(notifications.c.status))]
    assert "undeliverable" in statuses
    assert "resolves to nobody" in caplog.text
    skipped = {(r.person_id, r.status, r.last_error) for r in deliveries_of(app)}
    assert skipped == {
        (p, "skipped", "deactivated") for p in ("p-bq-duty", "p-bq-office", "p-bq-xh-leader")
    }


def test_two_dispatchers_never_send_the_same_row(
    database: Database, clock: FixedClock, app: App, hook: HttpReceiver, smtp: SmtpReceiver
) -> None:
    for _ in range(6):
        case_id = open_case(app)
        trigger, actor, payload, _ = LIFECYCLE[0]
        app.cases.submit_event(case_id, trigger, actor, payload)
    other = make_app(database, clock, channels(smtp, hook))
    barrier = threading.Barrier(2)

    def run(target: App) -> None:
        barrier.wait()
        target.dispatcher.run_once()

    try:
        threads = [threading.Thread(target=run, args=(a,)) for a in (app, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.close()
    keys = Counter(r.headers["x-gengbao-dedupe-key"] for r in hook.requests)
    assert len(keys) == 6 and set(keys.values()) == {1}
    assert len(smtp.messages) == 6 * 3
    assert {r.status for r in deliveries_of(app)} == {"sent"}


def test_a_message_tells_the_case_as_it_was_when_its_cause_committed(
    app: App, smtp: SmtpReceiver
) -> None:
    case_id = open_case(app)
    trigger, actor, payload, _ = LIFECYCLE[0]
    app.cases.submit_event(case_id, trigger, actor, payload)  # stop_fail
    for trigger, actor, payload, _ in LIFECYCLE[1:3]:  # report, confirm (sets violation_kind)
        app.cases.submit_event(case_id, trigger, actor, payload)
    app.dispatcher.run_once()
    stop_failed = [m for m in smtp.messages if "制止无效" in str(m.message["Subject"])]
    assert stop_failed
    assert all("违法建房" not in m.message.get_content() for m in stop_failed)


def test_the_delivery_list_is_scoped_and_paged_in_the_query(app: App) -> None:
    """More deliveries of another town than the page: a member still sees its own."""
    for _ in range(4):  # 建胜镇 / 百花村一社: each stop_fail tells three people there
        other = app.cases.create_case(
            "farmland_violation", "ddk-js-bh-1", "p-js-bh-1-member", CASE_DATA
        ).id
        app.cases.submit_event(other, "stop_fail", "p-js-bh-1-member", {"stop_note": "拒绝"})
    own = open_case(app)
    app.cases.submit_event(own, "stop_fail", REPORTER, {"stop_note": "拒绝停工"})
    app.dispatcher.run_once()
    everything = app.dispatcher.list(limit=1000)
    mine = [d for d in everything if d["case"] == own]
    assert len(everything) > len(mine) + 3 and len(mine) >= 3
    first = app.dispatcher.list(limit=2, within=[UNIT])
    rest = app.dispatcher.list(limit=1000, within=[UNIT], after=first[-1]["id"])
    assert [d["id"] for d in first + rest] == [d["id"] for d in mine]
    assert app.dispatcher.list(limit=5, within=[]) == []  # a scope with no units sees nothing


def test_a_message_that_cannot_be_built_is_one_warning_line(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    """The cause and the delivery, no traceback (that needs DEBUG: --verbose)."""

    class Broken:
        name = "webhook"

        def address(self, recipient: Any) -> str:
            return "x"

        def send(self, message: Any, address: str) -> None:
            raise ZeroDivisionError("a bug in a channel")

    app.dispatcher.channels["webhook"] = Broken()
    case_id = open_case(app)
    trigger, actor, payload, _ = LIFECYCLE[0]
    app.cases.submit_event(case_id, trigger, actor, payload)
    with caplog.at_level(logging.INFO, logger="notifications"):
        app.dispatcher.run_once()
    failures = [r for r in caplog.records if "cannot build the message" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].levelno == logging.WARNING
    assert "ZeroDivisionError: a bug in a channel" in failures[0].getMessage()
    assert not failures[0].exc_info
    assert {d.status for d in deliveries_of(app, "webhook")} == {"dead"}


def test_a_notification_that_cannot_expand_is_dead_and_holds_back_none_of_its_batch(
    app: App, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    case_id = open_case(app)
    trigger, actor, payload, _ = LIFECYCLE[0]
    app.cases.submit_event(case_id, trigger, actor, payload)
    with app.engine.begin() as conn:  # urgent, so the batch meets it first
        bad = conn.execute(
            sa.insert(notifications)
            .values(
                case_id=None,
                kind="patrol_reminder",
                template="patrol_reminder",
                roles=["village.leader"],
                context={},
                dedupe_key="bad-unit",
                status="pending",
                created_at=clock.now(),
                unit_code="no-such-unit",
                priority=1,
            )
            .returning(notifications.c.id)
        ).scalar_one()
    with caplog.at_level(logging.WARNING):
        expanded = app.dispatcher.expand()
    with app.engine.connect() as conn:
        status = dict(conn.execute(sa.select(notifications.c.id, notifications.c.status)).all())
    assert expanded == len(status)
    assert status.pop(bad) == "dead"
    assert status and set(status.values()) == {"expanded"}
    assert {d.notification_id for d in deliveries_of(app)} == set(status)
    warnings = [r.getMessage() for r in caplog.records if "cannot expand" in r.getMessage()]
    assert len(warnings) == 1 and f"notification {bad} " in warnings[0]


def test_each_notification_reaches_the_people_of_its_own_case_unit(app: App) -> None:
    near = open_case(app)  # 八桥镇 / 新华村一组
    far = app.cases.create_case(  # 建胜镇 / 百花村一社: another town
        "farmland_violation", "ddk-js-bh-1", "p-js-bh-1-member", CASE_DATA
    ).id
    trigger, _actor, payload, _ = LIFECYCLE[0]
    app.cases.submit_event(far, trigger, "p-js-bh-1-member", payload)  # the far one first
    app.cases.submit_event(near, trigger, REPORTER, payload)
    app.dispatcher.expand()
    with app.engine.connect() as conn:
        reached = conn.execute(
            sa.select(notifications.c.case_id, deliveries.c.person_id).join(
                deliveries, deliveries.c.notification_id == notifications.c.id
            )
        ).all()
    people = {case: {p for c, p in reached if c == case} for case in (near, far)}
    assert "p-bq-xh-leader" in people[near] and "p-js-bh-leader" in people[far]
    assert not {p for p in people[near] if p.startswith("p-js-")}
    assert not {p for p in people[far] if p.startswith("p-bq-")}
