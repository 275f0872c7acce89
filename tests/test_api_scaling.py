"""HTTP that scales: one pooled connection per request, no ping, ``serve --workers N``.

Real ``gengbao serve`` processes over real HTTP.  The server counts, with a
pool ``checkout`` listener, the checkouts each request makes and shows the
totals in ``/metrics`` (``gengbao_http_requests_total``,
``gengbao_http_pool_checkouts_total``) with the pid that answered
(``gengbao_process_info``).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.support.api_server import ApiServer, running_server
from tests.support.databases import PostgresSchemas
from tests.support.farmland import CASE_DATA, LIFECYCLE, REPORTER, UNIT
from tests.support.waiting import wait_for

WORKFLOW = "farmland_violation"
OFFICE = "p-ddk-office1"  # reads /metrics
ACTORS = sorted({actor for _, actor, _, _ in LIFECYCLE} | {REPORTER, OFFICE})


@dataclass(frozen=True)
class Scrape:
    pid: int
    requests: int
    checkouts: int


def scrape(client: httpx.Client) -> Scrape:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    body = response.text

    def value(name: str) -> int:
        found = re.search(rf"^{name} (\d+)$", body, re.MULTILINE)
        assert found, f"{name} missing from /metrics"
        return int(found.group(1))

    pid = re.search(r'^gengbao_process_info\{pid="(\d+)"\} 1$', body, re.MULTILINE)
    assert pid, "gengbao_process_info missing from /metrics"
    return Scrape(
        pid=int(pid.group(1)),
        requests=value("gengbao_http_requests_total"),
        checkouts=value("gengbao_http_pool_checkouts_total"),
    )


def counted_since(client: httpx.Client, before: Scrape, expected: int) -> tuple[int, int, int]:
    """Once *expected* requests since *before* are counted: (those requests, all requests
    counted since *before*, their pool checkouts).

    A request is counted when its connection is back in the pool, just after its
    answer: a scrape sent right after the last answer may come before it is.  So
    this scrapes until *expected* are counted, leaving out its own earlier scrapes
    (each counts too, after its answer); more than *expected* fails the caller's
    equality.  Each request's checkouts are counted with it, so the last two agree
    whenever the counters are read.
    """
    polls = 0
    seen = (0, 0, 0)

    def done() -> bool:
        nonlocal polls, seen
        now = scrape(client)
        counted = now.requests - before.requests
        seen = (counted - polls, counted, now.checkouts - before.checkouts)
        polls += 1
        return seen[0] >= expected

    wait_for(f"{expected} requests counted in /metrics", done)
    return seen


def lifecycle(server: ApiServer, tokens: dict[str, str], client: httpx.Client) -> str:
    """Open a case and walk it to closed (8 requests); its id."""

    def auth(actor: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[actor]}"}

    body = {"workflow": WORKFLOW, "unit": UNIT, "data": CASE_DATA}
    created = client.post("/cases", json=body, headers=auth(REPORTER))
    assert created.status_code == 201, created.text
    case_id: str = created.json()["id"]
    for trigger, actor, payload, reached in LIFECYCLE:
        done = client.post(
            f"/cases/{case_id}/events",
            json={"trigger": trigger, "payload": payload},
            headers=auth(actor),
        )
        assert done.status_code == 200, done.text
        assert done.json()["state"] == reached
    return case_id


@pytest.fixture(scope="module")
def tokens(server: ApiServer) -> dict[str, str]:
    return server.tokens(ACTORS)


# ---------------------------------------------------------------- one checkout per request


def test_each_request_checks_out_one_connection(server: ApiServer, tokens: dict[str, str]) -> None:
    """Token lookup, visibility check, event (and a read's two queries): one checkout."""
    with server.client(tokens[OFFICE]) as office, server.client() as client:
        before = scrape(office)
        case_id = lifecycle(server, tokens, client)
        auth = {"Authorization": f"Bearer {tokens[REPORTER]}"}
        assert client.get(f"/cases/{case_id}", headers=auth).status_code == 200
        assert client.get(f"/cases/{case_id}/history", headers=auth).status_code == 200
        assert client.get("/cases", headers=auth).status_code == 200
        refused = client.post(
            f"/cases/{case_id}/events", json={"trigger": "report", "payload": {}}, headers=auth
        )
        assert refused.status_code in (403, 409), refused.text
        expected = 1 + 1 + len(LIFECYCLE) + 3 + 1  # the first scrape counts after it
        requests, counted, checkouts = counted_since(office, before, expected)
    assert requests == expected
    assert checkouts == counted


def test_concurrent_clients_each_request_one_checkout(
    server: ApiServer, tokens: dict[str, str]
) -> None:
    """8 clients at once (on SQLite every event's BEGIN IMMEDIATE follows a read on the
    same connection: no read snapshot may be left to fail it)."""
    clients, rounds = 8, 2
    failures: list[BaseException] = []
    start = threading.Barrier(clients)

    def work() -> None:
        try:
            with server.client() as client:
                start.wait()
                for _ in range(rounds):
                    lifecycle(server, tokens, client)
        except BaseException as exc:
            failures.append(exc)

    with server.client(tokens[OFFICE]) as office:
        before = scrape(office)
        threads = [threading.Thread(target=work) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures, failures[0]
        expected = clients * rounds * (1 + len(LIFECYCLE)) + 1
        requests, counted, checkouts = counted_since(office, before, expected)
    assert requests == expected
    assert checkouts == counted


# ---------------------------------------------------------------- no ping: dead connections


@pytest.fixture
def pg_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    with running_server("postgres", request, tmp_path_factory) as srv:
        yield srv


def _server_backends(schemas: PostgresSchemas, pid: int) -> list[int]:
    """The PostgreSQL backends of the process *pid* (its ``application_name``)."""
    name = f"gengbao {socket.gethostname()}:{pid}"
    with schemas.admin.connect() as conn:
        rows = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
            {"name": name},
        )
        return [r.pid for r in rows]


def test_a_request_answers_after_the_database_killed_the_pooled_connections(
    pg_server: ApiServer, pg_schemas: PostgresSchemas
) -> None:
    server = pg_server
    tokens = server.tokens([REPORTER])
    with server.client(tokens[REPORTER]) as client:
        created = client.post(
            "/cases", json={"workflow": WORKFLOW, "unit": UNIT, "data": CASE_DATA}
        )
        assert created.status_code == 201, created.text
        case_id = created.json()["id"]
        assert server.process is not None
        backends = _server_backends(pg_schemas, server.process.pid)
        assert backends, "the server holds no connection"
        with pg_schemas.admin.connect() as conn:
            for pid in backends:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        read = client.get(f"/cases/{case_id}")
        assert read.status_code == 200, server.log()
        assert read.json()["id"] == case_id
        trigger, actor, payload, reached = LIFECYCLE[0]
        assert actor == REPORTER
        done = client.post(
            f"/cases/{case_id}/events", json={"trigger": trigger, "payload": payload}
        )
        assert done.status_code == 200, done.text
        assert done.json()["state"] == reached
    assert not set(backends) & set(_server_backends(pg_schemas, server.process.pid))


# ---------------------------------------------------------------- serve --workers N


def _pids_answering(server: ApiServer, token: str, wanted: set[int] | int) -> set[int]:
    """Pids seen in /metrics over new connections (8 at a time) until *wanted* (that many,
    or these pids and one more) are seen, or 60 seconds pass."""
    seen: set[int] = set()
    lock = threading.Lock()
    deadline = time.monotonic() + 60.0

    def enough() -> bool:
        if isinstance(wanted, int):
            return len(seen) >= wanted
        return len(seen - wanted) >= 1

    def ask() -> None:
        while time.monotonic() < deadline:
            with lock:
                if enough():
                    return
            with server.client(token) as client:  # a new connection each time
                pid = scrape(client).pid
            with lock:
                seen.add(pid)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return seen


def test_serve_with_two_workers_answers_from_both_and_stops_on_sigterm(
    request: pytest.FixtureRequest, pg_schemas: PostgresSchemas, tmp_path: Path
) -> None:
    url = pg_schemas.create("workers")
    server = ApiServer(url, tmp_path, workers=2)
    try:
        server.start()
        tokens = server.tokens(ACTORS)
        workers = _pids_answering(server, tokens[OFFICE], 2)
        assert len(workers) == 2, server.log()
        assert server.process is not None
        assert server.process.pid not in workers
        with server.client() as client:
            lifecycle(server, tokens, client)

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)  # a worker lost: the parent starts another
        survivor = workers - {victim}
        newcomers = _pids_answering(server, tokens[OFFICE], workers) - workers
        assert len(newcomers) == 1, server.log()
        replaced = survivor | newcomers

        assert server.terminate() == 0, server.log()
        log = server.stderr.read_text(encoding="utf-8", errors="replace")  # all of it
        for pid in replaced:
            assert f"Finished server process [{pid}]" in log, log
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        assert "killed by SIGKILL; starting another" in log
    finally:
        server.close()
        pg_schemas.drop(url)


def test_workers_above_one_are_refused_on_sqlite(tmp_path: Path) -> None:
    server = ApiServer(f"sqlite:///{tmp_path / 'gengbao.db'}", tmp_path)
    done = server.cli("serve", "--port", str(server.port), "--workers", "2", check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "gengbao: error: --workers 2 needs PostgreSQL: SQLite has one writer at a time, "
        "so run one worker (the default)"
    ]
    assert not server.accepting()
