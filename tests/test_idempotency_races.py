"""A retry with the same ``Idempotency-Key`` while the first request is in flight.

The twin must get the first request's answer (or ``request_in_progress``),
never a refusal computed against the state the first request produced.

On PostgreSQL the race is made certain rather than likely: the test holds the
case row (``FOR UPDATE``) so both requests are inside their transactions,
waits until both are seen blocked on a lock (``pg_stat_activity``, filtered
by an ``application_name`` only these requests use), then lets go.  On
SQLite the writers queue on the database lock; the twins are started
together and the outcome checked the same way.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy import Engine

from engine.clock import FixedClock
from engine.errors import GengbaoError, RequestInProgress
from engine.grid.registry import load_grid
from engine.store.db import make_engine, normalize_url
from engine.store.tables import cases, history, idempotency
from tests.support.databases import Database
from tests.support.farmland import (
    CASE_DATA,
    GRID_FILE,
    REPORTER,
    ROOT,
    UNIT,
    WORKFLOW_FILE,
    case_service,
)
from tests.support.processes import GENGBAO, gengbao_env

NOW = "2026-09-18T10:00:00+08:00"
PAYLOAD = {"stop_note": "已制止"}


def tagged(url: str, tag: str) -> str:
    """*url* whose PostgreSQL connections carry ``application_name`` *tag*."""
    if not url.startswith("postgresql"):
        return url
    parsed = normalize_url(url).update_query_dict({"application_name": tag})
    return parsed.render_as_string(hide_password=False)


@pytest.fixture
def case_id(database: Database, clock: FixedClock) -> str:
    engine = database.new_engine()
    load_grid(engine, GRID_FILE)
    service = case_service(engine, clock)
    service.catalog.sync_folder(WORKFLOW_FILE.parent)  # processes find it registered
    return service.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA).id


@contextmanager
def case_held(database: Database, case_id: str) -> Iterator[None]:
    """PostgreSQL: hold the case row until the block ends (SQLite: nothing)."""
    if database.backend != "postgres":
        yield
        return
    with database.new_engine().begin() as conn:
        conn.execute(sa.select(cases.c.id).where(cases.c.id == case_id).with_for_update())
        yield


def wait_blocked(database: Database, tag: str, count: int, timeout: float = 30.0) -> None:
    """PostgreSQL: wait until *count* connections tagged *tag* wait on a lock."""
    if database.backend != "postgres":
        return
    probe = database.engines[0]
    deadline = time.monotonic() + timeout
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = :tag AND wait_event_type = 'Lock'"
    )
    while time.monotonic() < deadline:
        with probe.connect() as conn:
            if conn.execute(query, {"tag": tag}).scalar_one() >= count:
                return
        time.sleep(0.02)  # polling a condition, not waiting for a timer
    raise AssertionError(f"the {count} requests never both waited on a lock")


def applied(engine: Engine, case_id: str) -> tuple[int, int, int]:
    """(history rows, case revision, idempotency rows)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(sa.func.count()).select_from(history).where(history.c.case_id == case_id)
        ).scalar_one()
        revision = conn.execute(
            sa.select(cases.c.revision).where(cases.c.id == case_id)
        ).scalar_one()
        keys = conn.execute(sa.select(sa.func.count()).select_from(idempotency)).scalar_one()
    return rows, revision, keys


def test_twin_threads_get_the_first_answer(
    database: Database, case_id: str, clock: FixedClock
) -> None:
    tag = f"gb-twin-{secrets.token_hex(4)}"
    services = [case_service(make_engine(tagged(database.url, tag)), clock) for _ in range(2)]
    database.engines.extend(s.engine for s in services)
    results: list[Any] = [None, None]
    barrier = threading.Barrier(2)

    def run(i: int) -> None:
        barrier.wait()
        try:
            view = services[i].submit_event(case_id, "stop", REPORTER, PAYLOAD, key="retry-1")
            results[i] = view.as_dict()
        except GengbaoError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    with case_held(database, case_id):
        for t in threads:
            t.start()
        wait_blocked(database, tag, 2)
    for t in threads:
        t.join(60)
    assert not any(isinstance(r, GengbaoError) for r in results), results
    assert results[0] == results[1]
    assert results[0]["state"] == "stopped" and results[0]["revision"] == 2
    assert applied(database.engines[0], case_id) == (2, 2, 1)


def write_settings(folder: Path) -> Path:
    settings = folder / "gengbao.yaml"
    settings.write_text(yaml.safe_dump({"workflows_dir": str(ROOT / "workflows")}), "utf-8")
    return settings


def test_twin_processes_get_the_first_answer(
    database: Database, case_id: str, tmp_path: Path
) -> None:
    tag = f"gb-twin-{secrets.token_hex(4)}"
    env = gengbao_env(tagged(database.url, tag))
    settings = write_settings(tmp_path)
    command = [
        GENGBAO,
        "--config",
        str(settings),
        "--now",
        NOW,
        "case",
        "event",
        case_id,
        "stop",
        "--actor",
        REPORTER,
        "--payload",
        json.dumps(PAYLOAD, ensure_ascii=False),
        "--key",
        "retry-2",
        "--json",
    ]
    outputs = [tmp_path / f"out{i}" for i in range(2)]
    errors = [tmp_path / f"err{i}" for i in range(2)]
    with case_held(database, case_id):
        processes = []
        for out, err in zip(outputs, errors, strict=True):
            with out.open("wb") as o, err.open("wb") as e:
                processes.append(
                    subprocess.Popen(
                        command, stdout=o, stderr=e, stdin=subprocess.DEVNULL, env=env, cwd=ROOT
                    )
                )
        try:
            wait_blocked(database, tag, 2, timeout=60)
        except AssertionError:
            for p in processes:
                p.kill()
            raise
    codes = [p.wait(60) for p in processes]
    texts = [e.read_text("utf-8") for e in errors]
    assert codes == [0, 0], texts
    answers = [json.loads(o.read_text("utf-8")) for o in outputs]
    assert answers[0] == answers[1]
    assert answers[0]["state"] == "stopped" and answers[0]["revision"] == 2
    assert applied(database.engines[0], case_id) == (2, 2, 1)


def test_a_twin_still_waiting_is_told_request_in_progress(
    database: Database, case_id: str, clock: FixedClock
) -> None:
    """The twin waits a bounded time for the first request, then says so (409)."""
    if database.backend != "postgres":
        pytest.skip("SQLite writers queue on the database lock (busy timeout)")
    first = case_service(database.new_engine(), clock)
    twin = case_service(database.new_engine(), clock)
    twin.claim_wait_ms = 200
    started = threading.Event()
    release = threading.Event()

    class Hold:
        def on_change(self, conn: Any, change: Any) -> dict[str, Any]:
            started.set()
            release.wait(30)
            return {}

    first.effects.append(Hold())
    result: list[Any] = []
    thread = threading.Thread(
        target=lambda: result.append(
            first.submit_event(case_id, "stop", REPORTER, PAYLOAD, key="retry-3")
        )
    )
    thread.start()
    try:
        assert started.wait(30)
        with pytest.raises(RequestInProgress) as caught:
            twin.submit_event(case_id, "stop", REPORTER, PAYLOAD, key="retry-3")
        assert caught.value.details["key"] == "retry-3"
    finally:
        release.set()
        thread.join(30)
    assert result and result[0].revision == 2
    again = twin.submit_event(case_id, "stop", REPORTER, PAYLOAD, key="retry-3")
    assert again.as_dict() == result[0].as_dict()
    assert applied(database.engines[0], case_id) == (2, 2, 1)
