"""Supervision (督办) at the edges: the HTTP routes on a real ``gengbao serve`` (one
error shape, Idempotency-Key, grid scope) and the CLI as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.api_server import ApiServer, assert_error
from tests.support.databases import Database
from tests.support.farmland import CASE_DATA, GRID_FILE, LIFECYCLE, REPORTER, UNIT
from tests.support.paths import GENGBAO, ROOT

TOWN_LEADER = "p-bq-leader"
VILLAGE_LEADER = "p-bq-xh-leader"
ELSEWHERE = "p-js-bh-leader"  # a village leader in another town: does not see the case
ACTORS = sorted(
    {a for _, a, _, _ in LIFECYCLE} | {REPORTER, TOWN_LEADER, VILLAGE_LEADER, ELSEWHERE}
)


@pytest.fixture(scope="module")
def as_actor(server: ApiServer) -> Iterator[Callable[[str], httpx.Client]]:
    tokens = server.tokens(ACTORS, "supervision")
    clients: dict[str, httpx.Client] = {}

    def client(actor: str) -> httpx.Client:
        if actor not in clients:
            clients[actor] = server.client(tokens[actor])
        return clients[actor]

    yield client
    for c in clients.values():
        c.close()


def filed(as_actor: Callable[[str], httpx.Client]) -> str:
    response = as_actor(REPORTER).post(
        "/cases", json={"workflow": "farmland_violation", "unit": UNIT, "data": CASE_DATA}
    )
    assert response.status_code == 201, response.text
    case_id: str = response.json()["id"]
    for trigger, actor, payload, _ in LIFECYCLE[:4]:
        done = as_actor(actor).post(
            f"/cases/{case_id}/events", json={"trigger": trigger, "payload": payload}
        )
        assert done.status_code == 200, done.text
    return case_id


def test_issue_reply_and_read_over_http(as_actor: Callable[[str], httpx.Client]) -> None:
    case_id = filed(as_actor)
    town = as_actor(TOWN_LEADER)
    key = {"Idempotency-Key": f"sup-{case_id}"}
    body = {"note": "请三个工作日内作出处理决定", "within": "3 working days"}
    issued = town.post(f"/cases/{case_id}/supervisions", json=body, headers=key)
    assert issued.status_code == 200, issued.text
    notice = issued.json()["supervision"]
    assert (notice["status"], notice["issued_by"], notice["note"]) == (
        "open",
        TOWN_LEADER,
        body["note"],
    )
    again = town.post(f"/cases/{case_id}/supervisions", json=body, headers=key)
    assert again.json() == issued.json()  # replayed, not a second notice
    assert_error(
        town.post(f"/cases/{case_id}/supervisions", json={"note": "x"}, headers=key),
        422,
        "idempotency_mismatch",
    )
    bad = assert_error(
        town.post(f"/cases/{case_id}/supervisions", json={"note": "x", "within": "2 weeks"}),
        422,
        "invalid_data",
    )
    assert list(bad["details"]["fields"]) == ["within"]
    assert_error(
        as_actor(REPORTER).post(f"/cases/{case_id}/supervisions", json={"note": "x"}),
        403,
        "not_permitted",
    )
    assert_error(
        as_actor(ELSEWHERE).post(f"/cases/{case_id}/supervisions", json={"note": "x"}),
        404,
        "unknown_case",
    )
    assert_error(as_actor(ELSEWHERE).get(f"/cases/{case_id}/supervisions"), 404, "unknown_case")
    listed = as_actor(VILLAGE_LEADER).get(f"/cases/{case_id}/supervisions").json()
    assert [(s["id"], s["label"]) for s in listed] == [(notice["id"], "open")]
    replied = as_actor(VILLAGE_LEADER).post(
        f"/cases/{case_id}/supervisions/{notice['id']}/reply", json={"note": "已立案调查"}
    )
    assert replied.status_code == 200, replied.text
    assert replied.json()["supervision"]["label"] == "answered: replied"
    assert_error(
        as_actor(VILLAGE_LEADER).post(
            f"/cases/{case_id}/supervisions/{notice['id']}/reply", json={"note": "再答"}
        ),
        409,
        "supervision_refused",
    )
    assert_error(
        as_actor(VILLAGE_LEADER).post(
            f"/cases/{case_id}/supervisions/999999/reply", json={"note": "答"}
        ),
        404,
        "unknown_supervision",
    )
    history = as_actor(VILLAGE_LEADER).get(f"/cases/{case_id}/history").json()
    assert [e["trigger"] for e in history][-2:] == ["supervise", "supervise_reply"]


# ---------------------------------------------------------------------- the CLI


def run(db: Database, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GENGBAO_DATABASE_URL": db.url}
    done = subprocess.run(
        [GENGBAO, *args], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def run_json(db: Database, *args: str) -> Any:
    return json.loads(run(db, *args, "--json").stdout)


def test_the_cli_issues_replies_and_lists(database: Database) -> None:
    run(database, "grid", "load", str(GRID_FILE))
    now = ("--now", "2026-09-18T10:00:00+08:00")
    case_id = run_json(
        database, *now, "case", "create", "farmland_violation",
        "--unit", UNIT, "--actor", REPORTER, "--data", json.dumps(CASE_DATA),
    )["id"]  # fmt: skip
    refused = run(
        database, *now, "case", "supervise", case_id, "--actor", TOWN_LEADER,
        "--note", "督办", "--within", "soon", check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and "within" in refused.stderr
    assert "Traceback" not in refused.stderr
    issued = run_json(
        database, *now, "case", "supervise", case_id, "--actor", TOWN_LEADER,
        "--note", "请立即制止", "--within", "2h", "--key", "k1",
    )  # fmt: skip
    sid = issued["supervision"]["id"]
    assert issued["supervision"]["deadline_at"] == "2026-09-18T04:00:00+00:00"
    shown = run_json(database, "case", "show", case_id)
    assert [s["id"] for s in shown["supervisions"]] == [sid]
    human = run(database, "case", "show", case_id).stdout
    assert f"supervision {sid} open" in human
    replied = run(
        database, *now, "case", "reply", case_id, "--actor", VILLAGE_LEADER, "--note", "已制止"
    ).stdout
    assert "answered: replied" in replied
    listed = run_json(database, "case", "supervisions", case_id, "--as", VILLAGE_LEADER)
    assert [(s["id"], s["answer"], s["reply"]) for s in listed] == [(sid, "replied", "已制止")]
