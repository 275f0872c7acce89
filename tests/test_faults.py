"""Faults under load: two servers on one PostgreSQL database, one killed (-9) every few seconds.

Run it alone with ``pytest tests/test_faults.py`` (it needs
``$GENGBAO_TEST_POSTGRES_URL`` and is skipped without it; about a minute).

Client threads open farmland cases and walk them through their first steps
over HTTP, every request with an ``Idempotency-Key``.  A request that fails
in transport (the server died, the connection reset, or the client timed
out on purpose while the request was in flight) is retried with the same key
on the other server until it gets an answer; ``request_in_progress`` and 503
are retried too, anything else is a failure.  Every second or three a random
server is killed with SIGKILL and a freshly started one takes its place
(started ahead, so the pace holds on a loaded machine); one server is always
up.  Every random choice comes from a seeded generator.

Afterwards: every acknowledged request was applied exactly once and its
stored answer is the one the client got; each case's history has one row per
acknowledged step, no gap, and its hash chain verifies.  Then a timer run
far in the future (killed once part-way, then run to the end) must leave no
due timer pending, no timer fired twice, and no pending timer of a state the
case has left.  The servers run on one fixed clock (``--now``), so no timer
is due while they run.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy import Engine

from engine.app import App
from engine.cases.catalog import Catalog
from engine.cases.service import CaseService
from engine.clock import FixedClock
from engine.grid.registry import load_grid
from engine.grid.tokens import TokenStore
from engine.settings import Settings
from engine.store.db import make_engine, upgrade
from engine.store.tables import cases, history, idempotency, notifications, overdue_facts, timers
from notifications.templates import TemplateStore
from tests.support.api_server import ApiServer, write_grid
from tests.support.databases import PostgresSchemas
from tests.support.farmland import CASE_DATA, LIFECYCLE, REPORTER, UNIT, WORKFLOW_FILE
from tests.support.paths import GENGBAO, ROOT, SUPPORT

pytestmark = pytest.mark.faults

SEED = 20261201
NOW = "2026-09-18T10:00:00+08:00"  # every server's fixed clock
LATER = "2026-11-30T10:00:00+08:00"  # the timer run: every deadline of those steps is due
CHAOS_SECONDS = 15.0  # at least; longer (up to CHAOS_LIMIT) until MIN_KILLS kills were made
CHAOS_LIMIT = 30.0
MIN_KILLS = 2
SPARES = 2  # servers started ahead of the kills: MIN_KILLS however slow a start is
CLIENTS = 3
STEPS = 4  # stop_fail, report, confirm, file_case
CLIENT_TIMEOUT_SHARE = 0.15  # first attempts sent with a read timeout too short to answer
REQUEST_DEADLINE = 40.0  # seconds a client keeps retrying one request
WORKER = str(SUPPORT / "timer_worker.py")  # a sweeper that dies mid-batch
CRASH_STATUS = 9  # its exit status when it died as told
LATER_CLOCK = FixedClock(datetime.fromisoformat(LATER))


class FixedClockServer(ApiServer):
    """``gengbao --now NOW serve`` with only the farmland workflow, killable with SIGKILL."""

    def __init__(self, database_url: str, workdir: Path, **kwargs: Any) -> None:
        super().__init__(database_url, workdir, **kwargs)
        folder = workdir / "workflows"  # one workflow to compile at start, not every one
        folder.mkdir()
        shutil.copy(WORKFLOW_FILE, folder / WORKFLOW_FILE.name)
        settings = yaml.safe_load(self.settings.read_text(encoding="utf-8"))
        settings["workflows_dir"] = str(folder)
        self.settings.write_text(yaml.safe_dump(settings), encoding="utf-8")

    def start(self, timeout: float = 60.0) -> None:
        command = [GENGBAO, "--config", str(self.settings), "--now", NOW]
        command += ["serve", "--port", str(self.port), "--no-access-log"]
        with self.stdout.open("ab") as out, self.stderr.open("ab") as err:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self.env, cwd=ROOT
            )
        self.wait_ready(timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)


class Fleet:
    """Two serving slots and a spare starting in the background.

    A kill takes a slot's server down with SIGKILL and puts the spare (a fresh
    ``gengbao serve``, already up) in its place, so the kills keep their pace
    however slowly a process starts on a loaded machine; a new spare starts
    at once.  One slot is always up.
    """

    def __init__(self, database_url: str, folder: Path) -> None:
        self.database_url = database_url
        self.folder = folder
        self.made = 0
        self.lock = threading.Lock()
        servers = [self.new_server() for _ in range(2 + SPARES)]
        starting = [threading.Thread(target=o.start) for o in servers]
        for t in starting:
            t.start()
        for t in starting:
            t.join()
        self.slots = servers[:2]
        self.spares: list[tuple[FixedClockServer, threading.Thread | None]] = [
            (o, None) for o in servers[2:]
        ]
        self.retired: list[FixedClockServer] = []

    def new_server(self) -> FixedClockServer:
        self.made += 1
        workdir = self.folder / f"server-{self.made}"
        workdir.mkdir()
        return FixedClockServer(self.database_url, workdir, loop_seconds=2.0)

    def url(self, slot: int) -> str:
        with self.lock:
            return self.slots[slot].base_url

    def ready_spare(self) -> FixedClockServer | None:
        for server, thread in self.spares:
            if thread is None or not thread.is_alive():
                return server
        return None

    def kill(self, slot: int, spare: FixedClockServer) -> None:
        """SIGKILL the slot's server and put the ready *spare* in its place."""
        victim = self.slots[slot]
        victim.kill()
        with self.lock:
            self.slots[slot] = spare
        self.retired.append(victim)
        self.spares = [(s, t) for s, t in self.spares if s is not spare]
        fresh = self.new_server()
        thread = threading.Thread(target=fresh.start)
        thread.start()
        self.spares.append((fresh, thread))

    def close(self) -> None:
        for _, thread in self.spares:
            if thread is not None:
                thread.join(90)
        for server in [*self.slots, *self.retired, *(s for s, _ in self.spares)]:
            server.close()


@dataclass
class Ledger:
    """What the clients were told, and what happened on the way."""

    answers: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (actor, key)
    steps: dict[str, list[str]] = field(default_factory=dict)  # case id → acknowledged keys
    transport_failures: int = 0
    lost_after_commit: int = 0  # retried after a transport failure, found already applied
    retried_busy: int = 0  # 409 request_in_progress or 503, retried
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Client:
    index: int
    fleet: Fleet
    tokens: dict[str, str]
    ledger: Ledger
    stop: threading.Event
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(SEED + self.index)

    def run(self) -> None:
        try:
            n = 0
            while not self.stop.is_set():
                n += 1
                self.walk_one_case(n)
        except Exception as exc:  # recorded for the main thread's assertion
            with self.ledger.lock:
                self.ledger.failures.append(f"client {self.index}: {exc!r}")

    def walk_one_case(self, n: int) -> None:
        key = f"c{self.index}-{n}-create"
        body = {"workflow": "farmland_violation", "unit": UNIT, "data": CASE_DATA}
        created = self.send(REPORTER, key, "/cases", body, None)
        case_id = created["id"]
        with self.ledger.lock:
            self.ledger.steps[case_id] = [key]
        revision = created["revision"]
        for step, (trigger, actor, payload, reached) in enumerate(LIFECYCLE[:STEPS]):
            if self.stop.is_set():
                return
            key = f"c{self.index}-{n}-{step}-{trigger}"
            event = {"trigger": trigger, "payload": payload}
            view = self.send(actor, key, f"/cases/{case_id}/events", event, (case_id, revision))
            if view["state"] != reached or view["revision"] != revision + 1:
                raise AssertionError(f"{key}: answered {view['state']} r{view['revision']}")
            revision = view["revision"]
            with self.ledger.lock:
                self.ledger.steps[case_id].append(key)

    def send(
        self,
        actor: str,
        key: str,
        path: str,
        body: dict[str, Any],
        before: tuple[str, int] | None,
    ) -> dict[str, Any]:
        """POST until answered, switching server after a transport failure."""
        server = self.rng.randrange(2)
        short = self.rng.random() < CLIENT_TIMEOUT_SHARE
        headers = {"Authorization": f"Bearer {self.tokens[actor]}", "Idempotency-Key": key}
        deadline = time.monotonic() + REQUEST_DEADLINE
        applied_early = False
        while time.monotonic() < deadline:
            base = self.fleet.url(server)
            timeout = httpx.Timeout(5.0, read=0.001 if short else 10.0)
            short = False
            try:
                response = httpx.post(base + path, json=body, headers=headers, timeout=timeout)
            except httpx.TransportError:
                with self.ledger.lock:
                    self.ledger.transport_failures += 1
                server = 1 - server
                if before is not None:
                    applied_early = applied_early or self.applied(server, actor, before)
                continue
            if response.status_code in (409, 503) and response.json().get("error") in (
                "request_in_progress",
                "storage_error",
                "not_ready",
            ):
                with self.ledger.lock:
                    self.ledger.retried_busy += 1
                time.sleep(0.05)  # a client's back-off
                continue
            if response.status_code not in (200, 201):
                raise AssertionError(f"{key}: {response.status_code} {response.text}")
            answer: dict[str, Any] = response.json()
            with self.ledger.lock:
                self.ledger.answers[(actor, key)] = answer
                self.ledger.lost_after_commit += applied_early
            return answer
        raise AssertionError(f"{key}: no answer in {REQUEST_DEADLINE} s")

    def applied(self, server: int, actor: str, before: tuple[str, int]) -> bool:
        """After a transport failure: is the event already applied (its answer lost)?"""
        case_id, revision = before
        headers = {"Authorization": f"Bearer {self.tokens[actor]}"}
        try:
            response = httpx.get(
                f"{self.fleet.url(server)}/cases/{case_id}", headers=headers, timeout=5.0
            )
        except httpx.TransportError:
            return False
        return response.status_code == 200 and response.json()["revision"] == revision + 1


def wait_threads(threads: list[threading.Thread], timeout: float) -> None:
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a client never finished its request"


@pytest.fixture
def database_url(pg_schemas: PostgresSchemas) -> Iterator[str]:
    url = pg_schemas.create("faults")
    yield url
    pg_schemas.drop(url)


def test_kill_nine_under_load_loses_and_duplicates_nothing(
    database_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    engine = make_engine(database_url)
    clock = FixedClock(datetime.fromisoformat(NOW))
    upgrade(engine)  # here, so that the servers start side by side with nothing to write
    load_grid(engine, write_grid(tmp_path / "grid.yaml"))
    Catalog(engine, clock, TemplateStore().check).register_file(WORKFLOW_FILE)
    fleet = Fleet(database_url, tmp_path)
    try:
        store = TokenStore(engine, clock)
        actors = {REPORTER, *(actor for _, actor, _, _ in LIFECYCLE[:STEPS])}
        tokens = {actor: store.create(actor, "faults")[1] for actor in actors}
        ledger = Ledger()
        stop = threading.Event()
        clients = [Client(i, fleet, tokens, ledger, stop) for i in range(CLIENTS)]
        threads = [threading.Thread(target=c.run, name=f"client-{c.index}") for c in clients]
        for t in threads:
            t.start()
        kills = 0
        chaos_at = time.monotonic()

        def chaos_over() -> bool:
            elapsed = time.monotonic() - chaos_at
            return elapsed > CHAOS_LIMIT or (elapsed > CHAOS_SECONDS and kills >= MIN_KILLS)

        while not chaos_over() and not ledger.failures:
            stop.wait(rng.uniform(1.0, 3.0))  # the pace of the kills
            spare = fleet.ready_spare()
            if spare is not None:
                fleet.kill(rng.randrange(2), spare)
                kills += 1
        stop.set()
        wait_threads(threads, REQUEST_DEADLINE + 10)
        assert ledger.failures == []
        check_every_answer_applied_once(engine, ledger)
        chaos_done = time.monotonic()
        fired = check_timers(database_url, engine, rng)
        print(
            f"\nfaults: {kills} kills, {len(ledger.steps)} cases, {len(ledger.answers)} answers, "
            f"{ledger.transport_failures} transport failures, {ledger.lost_after_commit} "
            f"answers lost after commit and replayed, {ledger.retried_busy} busy retries, "
            f"{fired} timers fired later; {chaos_at - started:.0f} s to start, "
            f"{chaos_done - chaos_at:.0f} s of chaos, {time.monotonic() - chaos_done:.0f} s of "
            "timers"
        )
        assert kills >= MIN_KILLS and ledger.transport_failures >= kills
    finally:
        fleet.close()
        engine.dispose()


def check_every_answer_applied_once(engine: Engine, ledger: Ledger) -> None:
    clock = FixedClock(datetime.fromisoformat(NOW))
    service = CaseService(engine, Catalog(engine, clock, TemplateStore().check), clock)
    with engine.connect() as conn:
        stored = {
            (r.actor, r.key): r.response
            for r in conn.execute(
                sa.select(idempotency.c.actor, idempotency.c.key, idempotency.c.response)
            )
        }
        revisions = {
            r.id: r.revision for r in conn.execute(sa.select(cases.c.id, cases.c.revision))
        }
        by_people = {
            r.case_id: r.n
            for r in conn.execute(
                sa.select(history.c.case_id, sa.func.count().label("n"))
                .where(history.c.actor != "system")
                .group_by(history.c.case_id)
            )
        }
    assert stored.keys() == ledger.answers.keys()  # every request answered, none extra
    for ref, answer in ledger.answers.items():
        assert stored[ref] == answer, ref  # the original answer, whoever answered
    assert set(revisions) == set(ledger.steps)  # no case opened that nobody was told of
    for case_id, keys in ledger.steps.items():
        assert by_people[case_id] == len(keys), case_id  # each acknowledged step once
        report = service.verify(case_id)  # seq 1..revision, no gap, chain and head intact
        assert report.ok, report


def check_timers(database_url: str, engine: Engine, rng: random.Random) -> int:
    """Fire everything due at LATER: first a sweeper that dies (``os._exit``) in the
    middle of its first batch, then one that runs to the end; nothing twice, nothing lost."""
    crash_after = rng.randint(1, 5)
    crashed = subprocess.run(
        [sys.executable, WORKER, database_url, LATER, str(crash_after), "exit"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "GENGBAO_CONFIG"},
        timeout=120,
        check=False,
    )
    assert crashed.returncode == CRASH_STATUS, crashed.stderr
    crashed_ids = json.loads(crashed.stdout.splitlines()[0])["fired_before_crash"]
    app = App(Settings(database_url=database_url, workflows_dir=ROOT / "workflows"), LATER_CLOCK)
    try:
        reported: list[int] = []  # timer ids fired by the sweeps that completed
        for _ in range(5):
            done = app.timers.run_due()
            reported += [f.timer_id for f in done]
            if not done:
                break
    finally:
        app.close()
    later = datetime.fromisoformat(LATER)
    with engine.connect() as conn:
        due = conn.execute(
            sa.select(sa.func.count())
            .select_from(timers)
            .where(timers.c.status == "pending", timers.c.due_at <= later)
        ).scalar_one()
        stale = conn.execute(
            sa.select(sa.func.count())
            .select_from(timers.join(cases, cases.c.id == timers.c.case_id))
            .where(timers.c.status == "pending", timers.c.case_revision != cases.c.revision)
        ).scalar_one()
        fired = set(
            conn.execute(sa.select(timers.c.id).where(timers.c.status == "fired")).scalars()
        )
        # a state's deadline and rungs; a duty's (签收 …) unless it was settled (stale)
        duty_late = timers.c.kind.like("%.deadline") | timers.c.kind.like("%.escalation")
        overdue_kinds = timers.c.kind.in_(("deadline", "escalation")) | (
            duty_late & ~timers.c.detail.like("stale:%")
        )
        late = set(
            conn.execute(
                sa.select(timers.c.id).where(timers.c.status == "fired", overdue_kinds)
            ).scalars()
        )
        facts = list(conn.execute(sa.select(overdue_facts.c.timer_id)).scalars())
        notices = set(
            conn.execute(
                sa.select(notifications.c.dedupe_key).where(
                    notifications.c.dedupe_key.like("timer:%")
                )
            ).scalars()
        )
    assert due == 0, "a due timer was never fired"
    assert stale == 0, "a timer of a state the case has left is still pending"
    assert set(reported) <= fired <= set(reported) | set(crashed_ids) and reported
    assert sorted(facts) == sorted(late)  # one overdue fact per late timer fired, no more
    assert notices <= {f"timer:{i}" for i in fired}  # no notice from a timer not fired
    assert len(reported) == len(set(reported)), "a timer reported fired twice"
    return len(fired)
