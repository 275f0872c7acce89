"""Timers across real processes: concurrent sweepers, a sweeper killed mid-sweep, a restart.

Every sweeper here is a separate OS process (``gengbao`` or ``tests/support/timer_worker.py``)
on the test's database, on a fixed clock given with ``--now``.  Nothing sleeps:
the tests wait for processes to exit, for a line a process prints, or (on
PostgreSQL, after a kill) for the dead session's row locks to be released.
"""

from __future__ import annotations

import json
import os
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TextIO

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url

from engine.app import App
from engine.cases.service import CaseService, Change
from engine.clock import FixedClock
from engine.errors import GengbaoError
from engine.store.db import make_engine, read_only
from engine.store.tables import cases, notifications, overdue_facts, timers
from engine.timers import TimerSchedule
from notifications.outbox import TransitionNotifications
from tests.support.databases import Database
from tests.support.farmland import CASE_DATA, LIFECYCLE, REPORTER, SH, START, UNIT
from tests.support.paths import GENGBAO, ROOT, SUPPORT
from tests.support.processes import gengbao_env

WORKER = str(SUPPORT / "timer_worker.py")
CRASH_STATUS = 9  # tests/support/timer_worker.py exits with it
PROCESS_TIMEOUT = 120.0

NOW = datetime(2026, 9, 21, 9, 0, tzinfo=SH)  # Monday: every timer of START's cases is due
# A case opened at START (the fixture clock's time; state ``discovered``, within
# 2h) writes six timers: reminders 11:00 and 11:30, the deadline and rung 0 at
# 12:00, rung 1 at 14:00 and rung 2 at 12:00 the next day.
TIMERS_PER_CASE = 6
EFFECT_NOTIFICATION = {"reminder", "escalation"}  # kinds that queue one (unless a late reminder)
EFFECT_FACT = {"deadline", "escalation"}  # kinds that record an overdue fact


# -- fixtures and helpers ------------------------------------------------------


def open_cases(app: App, n: int) -> list[str]:
    return [
        app.cases.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA).id for _ in range(n)
    ]


def spawn(db: Database, args: Sequence[str], *, stdin: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        list(args),
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=gengbao_env(db.url),
        cwd=ROOT,
    )


def run_due_process(db: Database, now: datetime) -> subprocess.Popen[str]:
    return spawn(db, [GENGBAO, "--now", now.isoformat(), "timers", "run-due", "--json"])


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Wait for *proc*, read and close its pipes; (exit status, stdout, stderr)."""
    try:
        out, err = proc.communicate(timeout=PROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"process {proc.args!r} hung; stderr:\n{err}") from None
    return proc.returncode, out, err


def fired_json(proc: subprocess.Popen[str]) -> list[dict[str, Any]]:
    status, out, err = finish(proc)
    assert status == 0, f"exit {status}: {err}"
    fired: list[dict[str, Any]] = json.loads(out)
    return fired


def query(engine: Engine, statement: Any) -> list[Any]:
    """Rows of *statement*, read without taking SQLite's write lock."""
    with read_only(engine).connect() as conn:
        return list(conn.execute(statement))


def due_timers(engine: Engine, at: datetime) -> list[Any]:
    """Pending timers due at *at*, in firing order (oldest first)."""
    t = timers.c
    return query(
        engine,
        sa.select(t.id, t.case_id, t.kind, t.due_at)
        .where(t.status == "pending", t.due_at <= at)
        .order_by(t.due_at, t.id),
    )


def statuses(engine: Engine, ids: Iterable[int]) -> Counter[str]:
    wanted = set(ids)
    rows = query(engine, sa.select(timers.c.id, timers.c.status))
    return Counter(status for timer_id, status in rows if timer_id in wanted)


def timer_notification_keys(engine: Engine) -> list[str]:
    key = notifications.c.dedupe_key
    return [k for (k,) in query(engine, sa.select(key).where(key.like("timer:%")))]


def fact_timer_ids(engine: Engine) -> list[int]:
    return [i for (i,) in query(engine, sa.select(overdue_facts.c.timer_id))]


def skipped_reminders(engine: Engine, ids: Iterable[int]) -> set[int]:
    """The reminders among *ids* that fired once their deadline had passed: skipped, no
    notification (checking that exactly those are marked so)."""
    t = timers.c
    wanted = set(ids)
    rows = query(
        engine,
        sa.select(t.id, t.detail, t.deadline_at, t.fired_at).where(
            t.kind == "reminder", t.status == "fired"
        ),
    )
    late = {r.id for r in rows if r.id in wanted and r.fired_at >= r.deadline_at}
    marked = {r.id for r in rows if r.id in wanted and r.detail == "skipped: deadline passed"}
    assert marked == late
    return late


def assert_effects_exactly_once(engine: Engine, kinds: dict[int, str]) -> None:
    """Each timer in *kinds* (id → kind) has exactly its effect rows, and nothing else does."""
    keys = timer_notification_keys(engine)
    assert len(keys) == len(set(keys))
    skipped = skipped_reminders(engine, kinds)
    assert set(keys) == {
        f"timer:{i}" for i, k in kinds.items() if k in EFFECT_NOTIFICATION and i not in skipped
    }
    facts = fact_timer_ids(engine)
    assert len(facts) == len(set(facts))
    assert set(facts) == {i for i, k in kinds.items() if k in EFFECT_FACT}


def wait_for_dead_sessions(engine: Engine) -> None:
    """On PostgreSQL, block until row locks left by a killed client are released.

    The server rolls a dead client's transaction back when it notices the
    closed socket, which may be a moment after the process is gone; until
    then its claims are still locked and a SKIP LOCKED sweep would pass them
    over.  Locking every row (waiting, not skipping) is the barrier.  SQLite's
    locks are released by the kernel when the process dies.
    """
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL lock_timeout = '60s'"))
        conn.execute(sa.select(timers.c.id).with_for_update()).all()
        conn.execute(sa.select(cases.c.id).with_for_update()).all()


def add_due_timers(engine: Engine, case_ids: Sequence[str], count: int, rng: random.Random) -> None:
    """Insert *count* pending reminder/deadline rows due between START and NOW.

    Each belongs to a random case, in the case's current state and revision,
    so it is current and fires with its effects.
    """
    with engine.connect() as conn:
        current = {
            c.id: (c.state, c.revision)
            for c in conn.execute(sa.select(cases.c.id, cases.c.state, cases.c.revision))
        }
    span = int((NOW - START).total_seconds())
    rows: list[dict[str, Any]] = []
    for _ in range(count):
        case_id = rng.choice(case_ids)
        state, revision = current[case_id]
        kind = rng.choice(("reminder", "deadline"))
        due = START + timedelta(seconds=rng.randrange(span))
        rows.append(
            {
                "case_id": case_id,
                "state": state,
                "case_revision": revision,
                "kind": kind,
                "rung": None,
                "deadline_at": due + timedelta(hours=1) if kind == "reminder" else due,
                "due_at": due,
                "repeat_seconds": None,
                "status": "pending",
                "created_at": START,
            }
        )
    with engine.begin() as conn:
        for first in range(0, len(rows), 2000):
            conn.execute(sa.insert(timers), rows[first : first + 2000])


# -- 1. two sweepers at once ---------------------------------------------------------


# Due timers for the two sweepers (SQLite writers take turns: fewer, to stay quick).
SWEEP_TIMERS = {"postgres": 10_000, "sqlite": 3_000}


def test_two_worker_processes_fire_every_due_timer_exactly_once(
    database: Database, app: App
) -> None:
    total = SWEEP_TIMERS[database.backend]
    case_ids = open_cases(app, 100)
    add_due_timers(app.engine, case_ids, total - len(case_ids) * TIMERS_PER_CASE, random.Random(7))
    due = due_timers(app.engine, NOW)
    assert len(due) == total
    kinds = {row.id: row.kind for row in due}

    procs = [run_due_process(database, NOW) for _ in range(2)]  # at once
    results = [finish(p) for p in procs]

    # Safety, which holds even if a sweeper failed: no timer fired twice, every
    # fired row has its effects once, none is left half-fired.
    fired_by = dict(query(app.engine, sa.select(timers.c.id, timers.c.fired_by)))
    reported: list[set[int]] = []
    dues: list[list[tuple[str, datetime]]] = []
    for proc, (status, out, _) in zip(procs, results, strict=True):
        worker = f"{socket.gethostname()}:{proc.pid}"
        in_db = {i for i in kinds if fired_by[i] == worker}
        if status != 0:
            reported.append(in_db)  # it printed nothing; its committed batches count
            continue
        fired = json.loads(out)
        ids = [f["id"] for f in fired]
        assert len(ids) == len(set(ids)), "a process fired a timer twice"
        assert set(ids) == in_db, "the rows do not say this process fired what it reported"
        assert {f["outcome"] for f in fired} <= {"fired"}
        assert {datetime.fromisoformat(f["fired_at"]) for f in fired} <= {NOW}
        dues.append([(f["case"], datetime.fromisoformat(f["due"])) for f in fired])
        reported.append(set(ids))
    first, second = reported
    assert not first & second, f"{len(first & second)} timer(s) fired by both processes"
    status_of = statuses(app.engine, kinds)
    assert set(status_of) <= {"fired", "pending"}, status_of
    assert_effects_exactly_once(app.engine, {i: kinds[i] for i in first | second})

    # Liveness: both sweeps succeeded and between them fired every due timer.
    failures = [
        f"process {p.pid} exited {status}: {err.strip()}"
        for p, (status, _, err) in zip(procs, results, strict=True)
        if status != 0
    ]
    assert not failures, "\n".join(failures)
    assert first | second == set(kinds), "some due timers were not fired"
    assert status_of == Counter({"fired": total})
    # Oldest first, case by case.  (Across the whole run a process may fire a timer
    # older than its previous batch's last: one it passed over while the other process
    # held its case, and found again once the other committed without it.  A case's
    # timers are always fired by whoever holds the case, all its due rows in the batch
    # in order.)
    for due_list in dues:
        by_case: dict[str, list[datetime]] = {}
        for case_id, when in due_list:
            by_case.setdefault(case_id, []).append(when)
        for case_id, case_dues in by_case.items():
            assert case_dues == sorted(case_dues), f"case {case_id}: not oldest first"
    assert due_timers(app.engine, NOW) == []
    levels = query(app.engine, sa.select(cases.c.escalation_level).distinct())
    assert levels == [(3,)]  # all three rungs of every case escalated, once


# -- 2. a sweeper killed mid-sweep ---------------------------------------------------


def crashing_worker(db: Database, crash_after: int, mode: str) -> subprocess.Popen[str]:
    return spawn(
        db,
        [sys.executable, WORKER, db.url, NOW.isoformat(), str(crash_after), mode],
        stdin=mode in ("block", "pause"),
    )


def check_crash_lost_nothing(
    database: Database,
    app: App,
    due: list[Any],
    crashed: list[int],
    committed: int,
    recover_in: str = "process",
) -> None:
    """After the crash: the *committed* oldest due timers fired (earlier batches),
    the batch in progress left no trace; a normal sweep (``gengbao timers run-due``,
    or this process's TimerService) then fires the rest, once."""
    wait_for_dead_sessions(app.engine)
    kinds = {row.id: row.kind for row in due}
    done = {row.id: row.kind for row in due[:committed]}
    assert set(crashed).isdisjoint(done)
    assert statuses(app.engine, kinds) == Counter(
        {"fired": committed, "pending": len(due) - committed}
    )
    assert statuses(app.engine, done) == Counter({"fired": committed} if committed else {})
    assert_effects_exactly_once(app.engine, done)
    if not committed:  # no rung escalated a case: the level updates rolled back too
        assert query(app.engine, sa.select(cases.c.escalation_level).distinct()) == [(0,)]

    if recover_in == "process":
        ids = [f["id"] for f in fired_json(run_due_process(database, NOW))]
    else:
        assert isinstance(app.clock, FixedClock)
        app.clock.set(NOW)  # (run_due(now) alone would stamp fired_at with the clock)
        ids = [f.timer_id for f in app.timers.run_due()]
    assert ids == [row.id for row in due[committed:]]
    assert statuses(app.engine, kinds) == Counter({"fired": len(due)})
    assert_effects_exactly_once(app.engine, kinds)
    assert query(app.engine, sa.select(cases.c.escalation_level).distinct()) == [(3,)]


@pytest.mark.parametrize(
    ("crash_after", "committed", "recover_in"),
    [(37, 0, "here"), (250, 200, "process")],  # in the first batch of 200; in the second
    ids=["first-batch", "second-batch"],
)
def test_a_process_that_dies_mid_sweep_loses_and_duplicates_nothing(
    database: Database, app: App, crash_after: int, committed: int, recover_in: str
) -> None:
    open_cases(app, 45)
    due = due_timers(app.engine, NOW)
    assert len(due) == 45 * TIMERS_PER_CASE
    assert app.timers.batch == 200

    status, out, err = finish(crashing_worker(database, crash_after, "exit"))
    assert status == CRASH_STATUS, f"exit {status}: {err}"
    fired = json.loads(out.splitlines()[-1])["fired_before_crash"]  # every batch's
    assert fired == [row.id for row in due[:crash_after]]
    crashed = fired[committed:]  # the batch the crash interrupted

    check_crash_lost_nothing(database, app, due, crashed, committed, recover_in)


def test_a_process_killed_while_blocked_mid_transaction_loses_and_duplicates_nothing(
    database: Database, app: App
) -> None:
    open_cases(app, 20)
    due = due_timers(app.engine, NOW)
    worker = crashing_worker(database, 50, "block")
    try:
        assert worker.stdout is not None
        line = worker.stdout.readline()  # printed once 50 timers fired, uncommitted
        assert line, f"the worker exited early: {worker.communicate()[1]}"
        crashed = json.loads(line)["fired_before_crash"]
        assert len(crashed) == 50
        # It is alive and holds its transaction open: none of that is visible.
        assert worker.poll() is None
        assert statuses(app.engine, crashed) == Counter({"pending": 50})
        assert timer_notification_keys(app.engine) == []
        assert fact_timer_ids(app.engine) == []
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        if worker.poll() is None:
            worker.kill()
        status, _, err = finish(worker)
    assert status == -signal.SIGKILL, err

    check_crash_lost_nothing(database, app, due, crashed, committed=0, recover_in="here")


class ResumeSweeper:
    """Effects hook: resumes a paused sweeper from inside a case event's transaction
    (the event holds its case row and has not touched the case's timers yet)."""

    def __init__(self, worker: subprocess.Popen[str]) -> None:
        self.worker = worker
        self.resumed = False

    def resume(self) -> None:
        if not self.resumed:
            assert self.worker.stdin is not None
            self.worker.stdin.write("resume\n")
            self.worker.stdin.flush()
            self.resumed = True

    def on_change(self, conn: Connection, change: Change) -> dict[str, Any]:
        self.resume()
        return {}


def locked_by_another(engine: Engine, case_id: str) -> bool:
    with engine.begin() as conn:
        query = sa.select(cases.c.id).where(cases.c.id == case_id)
        return conn.execute(query.with_for_update(skip_locked=True)).first() is None


def with_lock_timeout(url: str, ms: int) -> str:
    """*url* (PostgreSQL) whose sessions give up waiting for a lock after *ms*."""
    parsed = make_url(url)
    options = parsed.query.get("options", "")
    assert isinstance(options, str)
    parsed = parsed.update_query_dict({"options": f"{options} -clock_timeout={ms}".strip()})
    return parsed.render_as_string(hide_password=False)


def test_a_case_event_during_a_sweep_is_neither_refused_nor_fails_the_sweep(
    database: Database, app: App, clock: FixedClock
) -> None:
    """A sweep batch holds the timer rows of two cases and pauses after firing the
    first case's first timer.  An event on the second case, once it holds that
    case's row, resumes the sweep: the sweeper then wants the second case's row
    while the event wants the second case's timer rows (to cancel them)."""
    if database.backend == "sqlite":
        pytest.skip("no row locks on SQLite: the whole sweep batch holds the write lock")
    first, second = open_cases(app, 2)
    due = due_timers(app.engine, NOW)
    assert len(due) == 2 * TIMERS_PER_CASE
    assert due[0].case_id == first
    clock.set(NOW)
    trigger, actor, payload, reached = LIFECYCLE[0]  # stop_fail → stop_failed
    refused: str | None = None
    worker = crashing_worker(database, 1, "pause")
    try:
        assert worker.stdout is not None
        line = worker.stdout.readline()
        assert line, f"the worker exited early: {worker.communicate()[1]}"
        assert json.loads(line)["fired_before_crash"] == [due[0].id]
        # The App's case service with the hook first, on sessions that never wait
        # for a lock longer than 30 s (so a wait cycle through the pipe cannot hang).
        hook = ResumeSweeper(worker)
        service = CaseService(
            make_engine(with_lock_timeout(database.url, 30_000)),
            app.catalog,
            clock,
            effects=[
                hook,
                TimerSchedule(app.calendar, app.settings.timezone),
                TransitionNotifications(),
            ],
        )
        database.engines.append(service.engine)  # disposed after the test
        if locked_by_another(app.engine, second):
            # A sweeper that locks a batch's cases up front (not this engine's) would
            # make the event wait before the hook: let the sweep go on first.
            hook.resume()
        try:
            state = service.submit_event(second, trigger, actor, payload).state
        except GengbaoError as exc:
            refused, state = f"{type(exc).__name__}: {exc}", ""
    finally:
        status, _, err = finish(worker)  # closing stdin ends a still-paused worker (exit 9)
    wait_for_dead_sessions(app.engine)

    assert refused is None, f"the case event was refused: {refused}"
    lines = err.strip().splitlines()
    last_error = max((i for i, text in enumerate(lines) if "Error" in text), default=0)
    tail = "\n".join(lines[last_error : last_error + 4])
    assert status == 0, f"the sweeper failed (exit {status}):\n{tail}"
    assert state == reached
    # The first case's timers fired once each, with their effects.
    firsts = {row.id: row.kind for row in due if row.case_id == first}
    assert statuses(app.engine, firsts) == Counter({"fired": TIMERS_PER_CASE})
    # The second case's: fired by the sweep or settled by the event, each once.
    assert set(statuses(app.engine, [row.id for row in due])) <= {"fired", "cancelled"}
    facts = fact_timer_ids(app.engine)
    assert sorted(facts) == sorted(row.id for row in due if row.kind in EFFECT_FACT)
    keys = timer_notification_keys(app.engine)
    assert len(keys) == len(set(keys))
    skipped = skipped_reminders(app.engine, firsts)  # every reminder here is past its deadline
    sent = {
        f"timer:{i}" for i, k in firsts.items() if k in EFFECT_NOTIFICATION and i not in skipped
    }
    assert sent <= set(keys)


# -- 3. restart after downtime -------------------------------------------------------


def staggered_cases(app: App, clock: FixedClock) -> None:
    """Five cases opened 17 minutes apart from START: their timers interleave."""
    for _ in range(5):
        open_cases(app, 1)
        clock.advance(timedelta(minutes=17))


def test_timers_due_during_downtime_fire_at_the_next_start_oldest_first(
    database: Database, app: App, clock: FixedClock
) -> None:
    staggered_cases(app, clock)
    # Nothing ran from Friday 10:00 until Saturday 09:00: all but the 24h rungs are due.
    restart = datetime(2026, 9, 19, 9, 0, tzinfo=SH)
    due = due_timers(app.engine, restart)
    assert len(due) == 5 * (TIMERS_PER_CASE - 1)

    fired = fired_json(run_due_process(database, restart))
    assert [f["id"] for f in fired] == [row.id for row in due]  # oldest first, ties by id
    for f, row in zip(fired, due, strict=True):
        assert datetime.fromisoformat(f["due"]) == row.due_at
        assert datetime.fromisoformat(f["fired_at"]) == restart
        assert f["late_seconds"] == (restart - row.due_at).total_seconds()
        assert f["outcome"] == "fired"
    assert fired[0]["late_seconds"] == 22 * 3600  # the first reminder, Friday 11:00
    recorded = query(
        app.engine,
        sa.select(timers.c.fired_at).where(timers.c.id.in_([row.id for row in due])).distinct(),
    )
    assert recorded == [(restart,)]
    pending = due_timers(app.engine, NOW)
    assert [row.kind for row in pending] == ["escalation"] * 5  # the 24h rungs wait

    # Down again until Monday: the next start fires the rungs, then nothing is left.
    fired = fired_json(run_due_process(database, NOW))
    assert [f["id"] for f in fired] == [row.id for row in pending]
    assert [f["late_seconds"] for f in fired] == [
        (NOW - row.due_at).total_seconds() for row in pending
    ]
    assert due_timers(app.engine, NOW) == []
    all_due = {row.id: row.kind for row in due + pending}
    assert_effects_exactly_once(app.engine, all_due)


LOG_LINE = re.compile(r"timer (\d+) (\w+) case (\S+) \((\w+)\) late (\d+)s: (\w+)")


def _pump(stream: TextIO, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def test_the_worker_catches_up_in_its_first_sweep_at_start(
    database: Database, app: App, clock: FixedClock
) -> None:
    staggered_cases(app, clock)
    due = due_timers(app.engine, NOW)
    assert len(due) == 5 * TIMERS_PER_CASE

    worker = spawn(
        database, [GENGBAO, "--now", NOW.isoformat(), "worker", "--interval", "3600", "--verbose"]
    )
    assert worker.stdout is not None and worker.stderr is not None
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(worker.stderr, lines), daemon=True)
    reader.start()
    logged: list[tuple[int, int]] = []
    try:
        while len(logged) < len(due):  # the log of its first sweep, at start
            line = lines.get(timeout=PROCESS_TIMEOUT)
            assert line is not None, f"the worker exited early; last logged {logged[-1:]}"
            match = LOG_LINE.search(line)
            if match:
                assert match.group(6) == "fired"
                logged.append((int(match.group(1)), int(match.group(5))))
        worker.send_signal(signal.SIGINT)  # Ctrl-C
        status = worker.wait(timeout=PROCESS_TIMEOUT)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        reader.join(timeout=PROCESS_TIMEOUT)
        out = worker.stdout.read()
        worker.stdout.close()
        worker.stderr.close()
    assert status == 0
    assert "sweeping every 3600s" in out
    assert [i for i, _ in logged] == [row.id for row in due]
    assert [late for _, late in logged] == [
        round((NOW - row.due_at).total_seconds()) for row in due
    ]
    assert statuses(app.engine, [row.id for row in due]) == Counter({"fired": len(due)})
