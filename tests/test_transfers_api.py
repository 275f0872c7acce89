"""Transfers over HTTP: send, read, refuse, accept; 404 for a case the actor cannot see."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.api_server import ApiServer, assert_error
from tests.support.farmland import CASE_DATA, LIFECYCLE, REPORTER, UNIT

TOWN = "p-bq-leader"
RECEIVER = "p-js-office"
OUTSIDER = "p-td-office"
ACTORS = sorted({REPORTER, TOWN, RECEIVER, OUTSIDER, "p-bq-xh-leader"})


@pytest.fixture(scope="module")
def as_actor(server: ApiServer) -> Iterator[Callable[[str], httpx.Client]]:
    tokens = server.tokens(ACTORS, name="transfers")
    clients = {a: server.client(t) for a, t in tokens.items()}
    yield lambda actor: clients[actor]
    for c in clients.values():
        c.close()


def reported(as_actor: Callable[[str], httpx.Client]) -> str:
    made = as_actor(REPORTER).post(
        "/cases", json={"workflow": "farmland_violation", "unit": UNIT, "data": CASE_DATA}
    )
    assert made.status_code == 201, made.text
    case_id: str = made.json()["id"]
    for trigger, actor, payload, _ in LIFECYCLE[:2]:
        done = as_actor(actor).post(
            f"/cases/{case_id}/events", json={"trigger": trigger, "payload": payload}
        )
        assert done.status_code == 200, done.text
    return case_id


def test_send_read_refuse_and_accept_a_transfer(as_actor: Callable[[str], httpx.Client]) -> None:
    case_id = reported(as_actor)
    town = as_actor(TOWN)
    bad = town.post(f"/cases/{case_id}/transfers", json={"to": "ddk-bq-sl", "reason": "x"})
    assert_error(bad, 422, "invalid_data")
    assert "to" in bad.json()["details"]["fields"]
    body: dict[str, Any] = {"to": "ddk-js", "reason": "不属本镇管辖"}
    key = {"Idempotency-Key": f"send-{case_id}"}
    sent = town.post(f"/cases/{case_id}/transfers", json=body, headers=key)
    assert sent.status_code == 201, sent.text
    again = town.post(f"/cases/{case_id}/transfers", json=body, headers=key)
    assert again.status_code == 201 and again.json() == sent.json()
    assert_error(as_actor(OUTSIDER).get(f"/cases/{case_id}/transfers"), 404, "unknown_case")
    receiver = as_actor(RECEIVER)
    shown = receiver.get(f"/cases/{case_id}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["transfer"]["to_unit"] == "ddk-js"
    assert shown.json()["transfer"]["sent_by"] == TOWN
    (hop,) = receiver.get(f"/cases/{case_id}/transfers").json()
    assert (hop["status"], hop["from_unit"]) == ("pending", UNIT)
    blocked = town.post(
        f"/cases/{case_id}/events",
        json={"trigger": "dismiss", "payload": {"verify_note": "x", "close_reason": "y"}},
    )
    assert_error(blocked, 409, "transfer_pending")
    outsider = as_actor(OUTSIDER).post(f"/cases/{case_id}/transfers/{hop['id']}/accept", json={})
    assert_error(outsider, 404, "unknown_case")
    done = receiver.post(f"/cases/{case_id}/transfers/{hop['id']}/accept", json={"note": "受理"})
    assert done.status_code == 200, done.text
    assert done.json()["unit"] == "ddk-js"
    late = receiver.post(f"/cases/{case_id}/transfers/{hop['id']}/return", json={"reason": "x"})
    assert_error(late, 409, "transfer_not_pending")
    assert_error(as_actor(REPORTER).get(f"/cases/{case_id}"), 404, "unknown_case")
