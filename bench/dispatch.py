"""Lag from commit to delivery under load, with a flaky, slow webhook and an SMTP receiver.

``--rate`` events per second for ``--seconds`` (farmland cases: the urgent
``stop_fail``, then ``report``; each event tells 3 people by email and the
group webhook once), then the dispatcher is given ``--settle`` seconds to
catch up.  The webhook answers 503 to a share ``--flaky`` of requests and
holds a share ``--slow`` for ``--slow-seconds`` (past the webhook's 1 s
timeout).  Failed deliveries are retried after 1–2 s.

Two modes, in the same run, on the same receivers:

- ``loop``: :class:`~notifications.dispatch_loop.DispatchLoop`, what
  ``gengbao serve`` runs now (woken on commit, a lane per channel);
- ``interval``: the old wiring, ``Dispatcher.run_once`` as an APScheduler
  interval job every ``--interval`` seconds (``max_instances=1``, so a slow
  pass makes the next runs be skipped).

Printed per mode and channel: messages, p50 / p95 / max lag from the event's
commit to the receiver getting the message (first successful attempt) for
urgent and normal notices, and messages/s over the run.  Lag is wall-clock
time on this machine: compare modes within one run, never across machines.

    python bench/dispatch.py                       # SQLite, both modes (~1 min)
    python bench/dispatch.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/dispatch.py` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

from engine.app import App  # noqa: E402
from engine.clock import SystemClock  # noqa: E402
from notifications.dispatch_loop import DispatchLoop  # noqa: E402
from tests.support.databases import PostgresSchemas  # noqa: E402
from tests.support.farmland import CASE_DATA, LIFECYCLE, REPORTER, UNIT, farmland_app  # noqa: E402
from tests.support.receivers import (  # noqa: E402
    HttpReceiver,
    ReceivedRequest,
    Reply,
    SmtpReceiver,
)

STOP_FAIL, REPORT = LIFECYCLE[0], LIFECYCLE[1]


class Arrivals:
    """When each dedupe key first arrived, by channel."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.first: dict[str, float] = {}

    def note(self, key: str | None) -> None:
        if key:
            now = time.time()
            with self.lock:
                self.first.setdefault(" ".join(str(key).split()), now)  # unfold the header


class FlakyHook(HttpReceiver):
    def __init__(self, arrivals: Arrivals, flaky: float, slow: float, slow_seconds: float) -> None:
        super().__init__()
        self.arrivals, self.flaky, self.slow, self.slow_seconds = (
            arrivals,
            flaky,
            slow,
            slow_seconds,
        )
        self.rng = random.Random(7)

    def _record(self, request: ReceivedRequest) -> Reply:
        roll = self.rng.random()
        if roll < self.flaky:
            return Reply(503)
        if roll < self.flaky + self.slow:
            return Reply(200, delay=self.slow_seconds)  # the client times out first
        self.arrivals.note(request.headers.get("x-gengbao-dedupe-key"))
        return Reply(200)


class TimedSmtp(SmtpReceiver):
    def __init__(self, arrivals: Arrivals) -> None:
        super().__init__()
        self.arrivals = arrivals
        self.messages = _Noting(arrivals)


class _Noting(list[Any]):
    def __init__(self, arrivals: Arrivals) -> None:
        super().__init__()
        self.arrivals = arrivals

    def append(self, mail: Any) -> None:
        self.arrivals.note(mail.message["X-Gengbao-Dedupe-Key"])


def settings(smtp: SmtpReceiver, hook: HttpReceiver) -> dict[str, Any]:
    return {
        "channels": {
            "email": {
                "host": smtp.host,
                "port": smtp.port,
                "security": "none",
                "sender": "耕保通知 <noreply@example.org>",
                "timeout": 5,
            },
            "webhook": {"url": hook.url("/hook"), "timeout": 1},
        },
        "retry": {"max_attempts": 20, "backoff_seconds": 2, "backoff_max_seconds": 4},
    }


@contextmanager
def dispatching(app: App, mode: str, interval: float) -> Iterator[Callable[[], int]]:
    """Run the dispatcher in *mode*; yields a function counting skipped interval runs."""
    if mode == "loop":
        loop = DispatchLoop(app.dispatcher, poll_seconds=interval)
        loop.start()
        try:
            yield lambda: 0
        finally:
            loop.stop()
        return
    skipped = _SkipCounter()
    scheduler_log = logging.getLogger("apscheduler")
    scheduler_log.setLevel(logging.WARNING)
    scheduler_log.propagate = False
    scheduler_log.addHandler(skipped)
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        app.dispatcher.run_once,
        "interval",
        seconds=interval,
        id="dispatch-interval-job",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )
    scheduler.start()
    try:
        yield lambda: skipped.count
    finally:
        scheduler.shutdown(wait=True)
        scheduler_log.removeHandler(skipped)


class _SkipCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "skipped" in record.getMessage():
            self.count += 1


def run(url: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    arrivals = Arrivals()
    with (
        TimedSmtp(arrivals) as smtp,
        FlakyHook(arrivals, args.flaky, args.slow, args.slow_seconds) as hook,
    ):
        app = farmland_app(url, SystemClock(), notifications=settings(smtp, hook))
        committed: dict[str, tuple[float, bool]] = {}  # notification key → commit time, urgent
        try:
            with dispatching(app, mode, args.interval) as skipped:
                started = time.time()
                events = 0
                open_cases: list[str] = []
                while time.time() - started < args.seconds:
                    due = started + events / args.rate
                    pause = due - time.time()
                    if pause > 0:
                        time.sleep(pause)  # pacing the load generator, not waiting for a timer
                    if open_cases and events % 2:
                        case_id, step = open_cases.pop(0), REPORT
                    else:
                        case_id = app.cases.create_case(
                            "farmland_violation", UNIT, REPORTER, CASE_DATA
                        ).id
                        open_cases.append(case_id)
                        step = STOP_FAIL
                    trigger, actor, payload, _ = step
                    view = app.cases.submit_event(case_id, trigger, actor, payload)
                    key = f"{case_id}:{view.revision}:transition"
                    committed[key] = (time.time(), step is STOP_FAIL)
                    events += 1
                load_seconds = time.time() - started
                expected = len(committed) * 4  # 3 emails + 1 webhook each
                settle_until = time.time() + args.settle
                while len(arrivals.first) < expected and time.time() < settle_until:
                    time.sleep(0.1)
                skips = skipped()
        finally:
            app.close()
    return summarize(mode, committed, arrivals, load_seconds, events, skips)


def summarize(
    mode: str,
    committed: dict[str, tuple[float, bool]],
    arrivals: Arrivals,
    load_seconds: float,
    events: int,
    skips: int,
) -> dict[str, Any]:
    lags: dict[tuple[str, bool], list[float]] = {}
    last = 0.0
    for key, at in arrivals.first.items():
        channel = "email" if ":email:" in key else "webhook"
        cause = key.split(f":{channel}:", 1)[0]
        if cause not in committed:
            continue
        commit, urgent = committed[cause]
        lags.setdefault((channel, urgent), []).append(at - commit)
        last = max(last, at)
    first_commit = min(t for t, _ in committed.values())
    delivered = sum(len(v) for v in lags.values())
    return {
        "mode": mode,
        "events": events,
        "events_per_s": events / load_seconds,
        "expected": len(committed) * 4,
        "delivered": delivered,
        "messages_per_s": delivered / max(last - first_commit, 1e-9),
        "lags": lags,
        "skipped": skips,
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(backend: str, results: list[dict[str, Any]]) -> None:
    print(f"\n{backend}")
    for r in results:
        print(
            f"  {r['mode']:<8} {r['events']} events at {r['events_per_s']:.1f}/s; "
            f"delivered {r['delivered']}/{r['expected']} at {r['messages_per_s']:.1f} messages/s"
            + (f"; {r['skipped']} interval runs skipped" if r["mode"] == "interval" else "")
        )
        for (channel, urgent), lag in sorted(r["lags"].items()):
            print(
                f"    {channel:<8} {'urgent' if urgent else 'normal':<7} n={len(lag):<5} "
                f"lag p50 {statistics.median(lag):6.2f} s  p95 {pct(lag, 0.95):6.2f} s  "
                f"max {max(lag):6.2f} s"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--postgres", metavar="URL", help="run on PostgreSQL instead of SQLite")
    parser.add_argument("--rate", type=float, default=60.0, help="events per second (60)")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds of load (15)")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to catch up (20)")
    parser.add_argument("--flaky", type=float, default=0.2, help="share of webhook 503s (0.2)")
    parser.add_argument("--slow", type=float, default=0.1, help="share of hanging webhooks (0.1)")
    parser.add_argument("--slow-seconds", type=float, default=3.0, help="how long they hang (3)")
    parser.add_argument("--interval", type=float, default=5.0, help="dispatch_seconds (5)")
    parser.add_argument(
        "--mode", choices=("loop", "interval", "both"), default="both", help="(both)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    modes = ["loop", "interval"] if args.mode == "both" else [args.mode]
    results = []
    for mode in modes:
        with database(args.postgres) as url:
            results.append(run(url, mode, args))
    report("PostgreSQL" if args.postgres else "SQLite", results)
    return 0


@contextmanager
def database(postgres: str | None) -> Iterator[str]:
    if postgres is None:
        with tempfile.TemporaryDirectory(prefix="gengbao-bench-") as folder:
            yield f"sqlite:///{Path(folder) / 'bench.db'}"
        return
    schemas = PostgresSchemas(postgres)
    try:
        yield schemas.create("bench")
    finally:
        schemas.close()


if __name__ == "__main__":
    raise SystemExit(main())
