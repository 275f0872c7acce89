"""签收, 指派, my tasks and notification reads over HTTP, against a real ``gengbao serve``
(its bundled workflow asks no state for 签收: an acknowledgement is still taken, lazily)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.api_server import ApiServer, assert_error
from tests.support.farmland import CASE_DATA, REPORTER, UNIT

WORKFLOW = "farmland_violation"
MEMBER1 = "p-bq-xh-member1"
LEADER = "p-bq-xh-leader"
TOWN_LEADER = "p-bq-leader"
ACTORS = [REPORTER, MEMBER1, LEADER, TOWN_LEADER]


@pytest.fixture(scope="module")
def clients(server: ApiServer) -> Iterator[dict[str, httpx.Client]]:
    tokens = server.tokens(ACTORS)
    made = {actor: server.client(tokens[actor]) for actor in ACTORS}
    yield made
    for c in made.values():
        c.close()


def test_ack_assign_and_tasks_over_http(clients: dict[str, httpx.Client]) -> None:
    created = clients[REPORTER].post(
        "/cases", json={"workflow": WORKFLOW, "unit": UNIT, "data": CASE_DATA}
    )
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]
    tasks = clients[REPORTER].get("/tasks").json()["items"]
    mine = [t for t in tasks if t["case"] == case_id]
    assert [(t["kind"], t["actions"][0]["trigger"]) for t in mine] == [("act", "stop")]
    assert clients[REPORTER].get(f"/cases/{case_id}").json()["assignment"] is None
    theirs = clients[TOWN_LEADER].get("/tasks").json()["items"]
    assert all(t["case"] != case_id for t in theirs)  # discovered is the village's
    refused = clients[TOWN_LEADER].post(f"/cases/{case_id}/ack")
    assert_error(refused, 403, "not_permitted")
    acked = clients[REPORTER].post(f"/cases/{case_id}/ack", headers={"Idempotency-Key": "a-1"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["assignment"]["assignee"] == REPORTER
    taken = clients[MEMBER1].post(f"/cases/{case_id}/ack")
    assert_error(taken, 409, "already_assigned")
    bad = clients[LEADER].post(f"/cases/{case_id}/assign", json={"to": TOWN_LEADER})
    assert_error(bad, 422, "invalid_data")
    assert "to" in bad.json()["details"]["fields"]
    given = clients[LEADER].post(f"/cases/{case_id}/assign", json={"to": MEMBER1})
    assert given.status_code == 200, given.text
    assert given.json()["assignment"]["assignee"] == MEMBER1
    shown = clients[LEADER].get(f"/cases/{case_id}").json()
    assert shown["assignment"]["status"] == "assigned"
    [task] = [t for t in clients[MEMBER1].get("/tasks").json()["items"] if t["case"] == case_id]
    assert (task["kind"], task["assignee"]) == ("act", MEMBER1)
    assert clients[MEMBER1].get("/tasks", params={"overdue": "true"}).json()["items"] == []


def test_a_notification_ack_by_someone_it_was_not_sent_to_is_refused(
    clients: dict[str, httpx.Client],
) -> None:
    assert_error(clients[MEMBER1].post("/notifications/999999/ack"), 404, "unknown_notification")
