"""The dispatch loop of ``gengbao serve``: at once, each channel on its own, urgent first.

Real SMTP and HTTP receivers on loopback; the clock is fake.  The fallback
poll is set to an hour, so anything delivered here was delivered because a
commit woke the loop, never because an interval passed.  Waits are bounded
waits on what the receivers got, never sleeps standing in for a timer.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from engine.app import App
from engine.clock import FixedClock
from engine.definitions import validate_text
from engine.errors import ConfigError
from engine.store.tables import deliveries, notifications
from notifications.dispatch import DispatchPolicy
from notifications.dispatch_loop import DispatchLoop
from notifications.outbox import enqueue
from notifications.wakeup import Wakeup
from tests.support.databases import Database
from tests.support.farmland import LIFECYCLE, START, WORKFLOW_FILE, farmland_app, open_case
from tests.support.receivers import HttpReceiver, Reply, SmtpReceiver
from tests.support.waiting import wait_for

HOUR = 3600.0  # the fallback poll: longer than any test
PATIENCE = 30.0  # seconds a test waits for something that should take milliseconds
STOP_FAIL = LIFECYCLE[0]  # urgent: notifies village.leader, town.duty, town.office (3 emails)
REPORT = LIFECYCLE[1]  # not urgent: notifies town.leader, town.office, town.duty


def settings(
    smtp: SmtpReceiver, hook: HttpReceiver, *, webhook_timeout: float = 30, **dispatch: Any
) -> dict[str, Any]:
    return {
        "channels": {
            "email": {
                "host": smtp.host,
                "port": smtp.port,
                "security": "none",
                "sender": "耕保通知 <noreply@example.org>",
                "timeout": 10,
            },
            "webhook": {"url": hook.url("/hook"), "timeout": webhook_timeout},
        },
        "retry": {"max_attempts": 3, "backoff_seconds": 60},
        "dispatch": dispatch,
    }


class Running:
    """Apps with their dispatch loops, stopped (receivers released first) at the end."""

    def __init__(self, database: Database, clock: FixedClock) -> None:
        self.database, self.clock = database, clock
        self.apps: list[App] = []
        self.loops: list[DispatchLoop] = []

    def app(self, notifications: dict[str, Any]) -> App:
        app = farmland_app(self.database.url, self.clock, notifications=notifications)
        self.apps.append(app)
        return app

    def loop(self, app: App) -> DispatchLoop:
        loop = DispatchLoop(app.dispatcher, poll_seconds=HOUR)
        self.loops.append(loop)
        loop.start()
        return loop

    def close(self) -> None:
        for loop in self.loops:
            loop.stop()
        for app in self.apps:
            app.close()


@pytest.fixture
def running(
    database: Database, clock: FixedClock, smtp: SmtpReceiver, hook: HttpReceiver
) -> Iterator[Running]:
    run = Running(database, clock)
    try:
        yield run
    finally:
        hook.stop()  # release hanging replies, so the sends in flight end
        run.close()


def submit(app: App, case_id: str, step: tuple[str, str, dict[str, Any], str]) -> None:
    trigger, actor, payload, _ = step
    app.cases.submit_event(case_id, trigger, actor, payload)


def statuses(app: App, channel: str) -> Counter[str]:
    with app.engine.connect() as conn:
        rows = conn.execute(sa.select(deliveries.c.status).where(deliveries.c.channel == channel))
        return Counter(s for (s,) in rows)


def idle(loop: DispatchLoop) -> Callable[[], bool]:
    """True once the loop has made a pass and has nothing in flight."""
    return lambda: loop.passes > 0 and not any(lane.busy for lane in loop.lanes.values())


# -- one slow channel does not hold back the others ---------------------------


def test_email_goes_out_while_the_webhook_hangs(
    running: Running, smtp: SmtpReceiver, hook: HttpReceiver
) -> None:
    hook.reply(*[Reply(200, delay=600)] * 10)  # every request hangs, longer than the test
    app = running.app(settings(smtp, hook, webhook_timeout=300, channel_concurrency={"webhook": 1}))
    loop = running.loop(app)
    cases = [open_case(app) for _ in range(3)]
    for case_id in cases:
        submit(app, case_id, STOP_FAIL)
    wait_for("9 emails", lambda: len(smtp.messages) == 9)
    # ... while the first webhook request hangs in the webhook's only slot
    wait_for("the webhook request", lambda: len(hook.requests) == 1)
    wait_for("9 emails recorded", lambda: statuses(app, "email") == {"sent": 9})
    assert statuses(app, "webhook") == Counter({"sending": 1, "pending": 2})
    # and a later event's emails still go out at once
    submit(app, cases[0], REPORT)
    wait_for("3 more emails", lambda: len(smtp.messages) == 12)
    assert len(hook.requests) == 1
    assert loop.lanes["webhook"].busy == 1


# -- a commit wakes the loop -------------------------------------------------------


def test_a_committed_event_is_sent_at_once_with_an_hour_long_poll(
    running: Running, smtp: SmtpReceiver, hook: HttpReceiver
) -> None:
    app = running.app(settings(smtp, hook))
    case_id = open_case(app)
    loop = running.loop(app)
    wait_for("the first pass", idle(loop))
    submit(app, case_id, STOP_FAIL)
    wait_for("3 emails and a webhook", lambda: len(smtp.messages) == 3 and len(hook.requests) == 1)
    wait_for("the sends to be recorded", lambda: statuses(app, "email") == {"sent": 3})


def test_an_event_committed_by_another_process_wakes_the_loop(
    database: Database, running: Running, smtp: SmtpReceiver, hook: HttpReceiver
) -> None:
    if database.backend != "postgres":
        pytest.skip("across processes only PostgreSQL wakes the loop (LISTEN/NOTIFY)")
    sender = running.app(settings(smtp, hook))
    other = running.app(settings(smtp, hook))  # its own engine and pool, like another process
    case_id = open_case(other)
    loop = running.loop(sender)
    wait_for("LISTEN", lambda: loop.wakeup.listening and idle(loop)())
    submit(other, case_id, STOP_FAIL)
    wait_for("3 emails", lambda: len(smtp.messages) == 3)
    assert loop.wakeup.notifications >= 1


def test_a_rolled_back_transaction_wakes_nobody_and_a_commit_does(database: Database) -> None:
    engine = database.new_engine()
    wakeup = Wakeup(engine)

    def queue(conn: sa.Connection, key: str) -> None:
        enqueue(
            conn,
            case_id=None,
            kind="reminder",
            roles=["town.duty"],
            template=None,
            context={},
            dedupe_key=key,
            at=START,
        )

    with pytest.raises(RuntimeError), engine.begin() as conn:
        queue(conn, "a")
        raise RuntimeError("rolled back")
    assert not wakeup.wait(0)
    with engine.begin() as conn:
        conn.execute(sa.select(1))  # a commit that queued nothing
    assert not wakeup.wait(0)
    with engine.begin() as conn:
        queue(conn, "b")
        assert not wakeup.wait(0)  # not before the commit
    assert wakeup.wait(0)
    with engine.connect() as conn:
        assert conn.execute(sa.select(notifications.c.dedupe_key)).scalars().all() == ["b"]


# -- urgent first ------------------------------------------------------------------


def test_an_urgent_notice_overtakes_the_queue(
    running: Running, smtp: SmtpReceiver, hook: HttpReceiver
) -> None:
    app = running.app(settings(smtp, hook, concurrency=1))
    first, second = open_case(app), open_case(app)
    submit(app, first, STOP_FAIL)
    DispatchLoop(app.dispatcher).drain()
    smtp.messages.clear()
    submit(app, first, REPORT)  # queued first, not urgent
    submit(app, second, STOP_FAIL)  # queued last, urgent
    DispatchLoop(app.dispatcher).drain()
    subjects = [str(m.message["Subject"]) for m in smtp.messages]
    assert len(subjects) == 6
    assert all("紧急" in s and second in s for s in subjects[:3]), subjects
    assert all("紧急" not in s for s in subjects[3:]), subjects


def test_urgent_is_a_transition_flag_checked_at_load() -> None:
    text = WORKFLOW_FILE.read_text(encoding="utf-8").replace("urgent: true", "urgent: maybe", 1)
    result = validate_text(text, "farmland.yaml")
    messages = [str(d) for d in result.diagnostics if d.is_error]
    assert any("urgent" in m and "expected true or false" in m for m in messages), messages
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "urgent: maybe" in t)
    assert any(m.startswith(f"farmland.yaml:{line}:") for m in messages), messages


# -- leases and twins --------------------------------------------------------------


def test_two_dispatch_loops_never_send_a_row_twice(
    running: Running, smtp: SmtpReceiver, hook: HttpReceiver
) -> None:
    one = running.app(settings(smtp, hook))
    two = running.app(settings(smtp, hook))
    cases = [open_case(one) for _ in range(6)]
    running.loop(one)
    running.loop(two)
    for i, case_id in enumerate(cases):
        submit(one if i % 2 else two, case_id, STOP_FAIL)
    wait_for(
        "18 emails and 6 webhooks", lambda: len(smtp.messages) >= 18 and len(hook.requests) >= 6
    )
    wait_for("every delivery recorded", lambda: set(statuses(one, "email")) == {"sent"})
    wait_for("every webhook recorded", lambda: set(statuses(one, "webhook")) == {"sent"})
    keys = Counter(r.headers["x-gengbao-dedupe-key"] for r in hook.requests)
    assert len(keys) == 6 and set(keys.values()) == {1}
    mails = Counter(m.message["X-Gengbao-Dedupe-Key"] for m in smtp.messages)
    assert len(mails) == 18 and set(mails.values()) == {1}


def test_a_claim_of_a_crashed_dispatcher_is_sent_once_after_its_lease(
    running: Running, clock: FixedClock, smtp: SmtpReceiver, hook: HttpReceiver
) -> None:
    crashed = running.app(settings(smtp, hook))
    submit(crashed, open_case(crashed), STOP_FAIL)
    crashed.dispatcher.expand()
    claimed = crashed.dispatcher.claim()  # claims, commits, then dies before sending
    assert len(claimed) == 4
    restarted = running.app(settings(smtp, hook))
    loop = running.loop(restarted)
    wait_for("the first pass", idle(loop))
    assert smtp.messages == [] and hook.requests == []  # the lease still holds
    clock.advance(timedelta(minutes=10))  # the lease (5 min) runs out
    loop.wakeup.set()  # the fake clock moved; a real one would reach the lease expiry
    wait_for("4 messages", lambda: len(smtp.messages) + len(hook.requests) == 4)
    wait_for("all recorded", lambda: statuses(restarted, "email") == {"sent": 3})
    assert len(smtp.messages) + len(hook.requests) == 4


def test_the_loop_survives_a_channel_that_raises(
    running: Running, smtp: SmtpReceiver, hook: HttpReceiver
) -> None:
    app = running.app(settings(smtp, hook))

    class Broken:
        name = "webhook"

        def address(self, recipient: Any) -> str:
            return "x"

        def send(self, message: Any, address: str) -> None:
            raise ZeroDivisionError("a bug in a channel")

    app.dispatcher.channels["webhook"] = Broken()
    loop = running.loop(app)
    submit(app, open_case(app), STOP_FAIL)
    wait_for("3 emails", lambda: len(smtp.messages) == 3)
    wait_for("the webhook dead", lambda: statuses(app, "webhook") == {"dead": 1})
    assert loop.running


# -- settings ----------------------------------------------------------------------


def test_bad_dispatch_settings_name_every_key() -> None:
    with pytest.raises(ConfigError) as info:
        DispatchPolicy.from_settings(
            {
                "channels": {"email": {}, "webhook": {}},
                "dispatch": {
                    "concurency": 2,
                    "concurrency": 0,
                    "channel_concurrency": {"webhok": 2, "email": "many"},
                },
            }
        )
    message = str(info.value)
    assert (
        "notifications.dispatch.concurency: unknown key 'concurency'; did you mean 'concurrency'?"
        in message
    )
    assert "notifications.dispatch.concurrency: expected a whole number ≥ 1, got a number (0)" in (
        message
    )
    assert (
        "channel_concurrency.webhok: not a configured channel; did you mean 'webhook'?" in message
    )
    assert "channel_concurrency.email: expected a whole number ≥ 1, got text ('many')" in message
    policy = DispatchPolicy.from_settings(
        {
            "channels": {"email": {}},
            "dispatch": {"concurrency": 2, "channel_concurrency": {"email": 8}},
        }
    )
    assert (policy.lane_size("email"), policy.lane_size("sms")) == (8, 2)


def test_stop_waits_for_the_sends_in_flight(
    running: Running, smtp: SmtpReceiver, hook: HttpReceiver
) -> None:
    hook.reply(Reply(200, delay=2))
    app = running.app(settings(smtp, hook))
    loop = running.loop(app)
    submit(app, open_case(app), STOP_FAIL)
    wait_for("the webhook request", lambda: len(hook.requests) == 1)
    stopper = threading.Thread(target=loop.stop)
    stopper.start()
    stopper.join(PATIENCE)
    assert not stopper.is_alive()
    assert statuses(app, "webhook") == {"sent": 1}  # answered, and recorded before stop returned
