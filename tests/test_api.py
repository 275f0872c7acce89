"""The HTTP API through a real ``gengbao serve`` process, over real HTTP.

One server per backend for the whole module (started with the CLI, tokens
made with the CLI, each actor with their own); the last test stops it with
SIGTERM while a request is in flight.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from engine.store.db import make_engine
from engine.store.tables import cases
from tests.support.api_server import CONTRACT_ROUTES, SERVICE, ApiServer, assert_error
from tests.support.farmland import CASE_DATA, LIFECYCLE, REPORTER, UNIT

WORKFLOW = "farmland_violation"
DISTRICT_LEADER = "p-ddk-leader"  # sees every case; may not stop one
ELSEWHERE = "p-js-bh-1-member"  # a group member in another town
OFFICE = "p-ddk-office1"  # the district office: reads /metrics
JSON = {"Content-Type": "application/json"}
ACTORS = sorted(
    {actor for _, actor, _, _ in LIFECYCLE}
    | {REPORTER, DISTRICT_LEADER, ELSEWHERE, SERVICE, OFFICE}
)


@pytest.fixture(scope="module")
def tokens(server: ApiServer) -> dict[str, str]:
    """One token per actor, made with `gengbao token create`."""
    return server.tokens(ACTORS)


@pytest.fixture(scope="module")
def as_actor(server: ApiServer, tokens: dict[str, str]) -> Iterator[Callable[[str], httpx.Client]]:
    clients: dict[str, httpx.Client] = {}

    def client(actor: str) -> httpx.Client:
        if actor not in clients:
            clients[actor] = server.client(tokens[actor])
        return clients[actor]

    yield client
    for c in clients.values():
        c.close()


@pytest.fixture
def anonymous(server: ApiServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def open_case(client: httpx.Client, unit: str = UNIT, **data: Any) -> dict[str, Any]:
    response = client.post(
        "/cases", json={"workflow": WORKFLOW, "unit": unit, "data": {**CASE_DATA, **data}}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# ---------------------------------------------------------------- liveness, readiness


def test_healthz_and_readyz_need_no_token(anonymous: httpx.Client) -> None:
    assert anonymous.get("/healthz").json() == {"status": "ok"}
    ready = anonymous.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "loop": "running"}


# ---------------------------------------------------------------- the lifecycle


def test_a_case_walks_from_discovery_to_close_out(
    as_actor: Callable[[str], httpx.Client], server: ApiServer
) -> None:
    reporter = as_actor(REPORTER)
    created = open_case(reporter)
    case_id = created["id"]
    assert {k: created[k] for k in ("workflow", "version", "state", "unit", "revision")} == {
        "workflow": WORKFLOW,
        "version": 1,
        "state": "discovered",
        "unit": UNIT,
        "revision": 1,
    }
    assert created["data"]["address"] == CASE_DATA["address"]
    shown = reporter.get(f"/cases/{case_id}").json()
    assert shown["escalation_level"] == 0 and shown["overdue"] == []
    assert {t["kind"] for t in shown["timers"]} == {"deadline", "reminder", "escalation"}

    for revision, (trigger, actor, payload, reached) in enumerate(LIFECYCLE, start=2):
        response = as_actor(actor).post(
            f"/cases/{case_id}/events", json={"trigger": trigger, "payload": payload}
        )
        assert response.status_code == 200, response.text
        view = response.json()
        assert (view["state"], view["revision"]) == (reached, revision)

    closed = as_actor(DISTRICT_LEADER).get(f"/cases/{case_id}").json()
    assert closed["state"] == "closed" and closed["open"] is False
    assert closed["timers"] == [] and closed["closed_at"] is not None
    assert closed["data"]["case_no"] == "大规资立〔2026〕1号"
    history = reporter.get(f"/cases/{case_id}/history").json()
    assert [e["trigger"] for e in history] == ["create"] + [s[0] for s in LIFECYCLE]
    assert [e["actor"] for e in history] == [REPORTER] + [s[1] for s in LIFECYCLE]
    assert {"seq", "at", "from", "to", "payload", "hash"} <= set(history[0])
    assert server.cli("case", "verify", case_id).returncode == 0
    # The dispatcher runs in the server: the transitions' notifications come out.
    deliveries = poll(
        lambda: reporter.get("/notifications", params={"case": case_id}).json()["items"]
    )
    assert all(d["case"] == case_id for d in deliveries)


def poll(fetch: Callable[[], list[Any]], seconds: float = 20.0) -> list[Any]:
    """Ask again until the answer is not empty (the server's loop works on its own clock)."""
    deadline = datetime.now(UTC) + timedelta(seconds=seconds)
    while datetime.now(UTC) < deadline:
        found = fetch()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"nothing after {seconds}s")


# ---------------------------------------------------------------- idempotency


def test_a_retried_create_applies_once_and_answers_the_same(
    as_actor: Callable[[str], httpx.Client],
) -> None:
    reporter = as_actor(REPORTER)
    body = {"workflow": WORKFLOW, "unit": UNIT, "data": CASE_DATA}
    headers = {"Idempotency-Key": "patrol-app-0001"}
    first = reporter.post("/cases", json=body, headers=headers)
    again = reporter.post("/cases", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    case_id = first.json()["id"]
    listed = reporter.get("/cases", params={"limit": 1000}).json()["items"]
    assert [c["id"] for c in listed].count(case_id) == 1
    assert len(reporter.get(f"/cases/{case_id}/history").json()) == 1

    other = {**body, "data": {**CASE_DATA, "area_m2": 1}}
    mismatch = reporter.post("/cases", json=other, headers=headers)
    assert (
        assert_error(mismatch, 422, "idempotency_mismatch")["details"]["key"] == "patrol-app-0001"
    )


def test_a_retried_event_applies_once_and_answers_the_same(
    as_actor: Callable[[str], httpx.Client],
) -> None:
    reporter = as_actor(REPORTER)
    case_id = open_case(reporter)["id"]
    event = {"trigger": "stop", "payload": {"stop_note": "已责令停工"}}
    headers = {"Idempotency-Key": f"stop-{case_id}"}
    first = reporter.post(f"/cases/{case_id}/events", json=event, headers=headers)
    again = reporter.post(f"/cases/{case_id}/events", json=event, headers=headers)
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    assert [e["trigger"] for e in reporter.get(f"/cases/{case_id}/history").json()] == [
        "create",
        "stop",
    ]
    changed = {"trigger": "stop", "payload": {"stop_note": "另一条说明"}}
    mismatch = reporter.post(f"/cases/{case_id}/events", json=changed, headers=headers)
    assert_error(mismatch, 422, "idempotency_mismatch")


# ---------------------------------------------------------------- authentication


def test_missing_bad_and_revoked_tokens_are_401(anonymous: httpx.Client, server: ApiServer) -> None:
    missing = anonymous.get("/cases")
    assert_error(missing, 401, "unauthenticated")
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    for header in ("Bearer gb_nope_nope", "Bearer", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 5000):
        assert_error(
            anonymous.get("/cases", headers={"Authorization": header}), 401, "unauthenticated"
        )

    token = server.token(REPORTER, "to revoke")
    assert anonymous.get("/cases", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    listed = server.cli("token", "list").stdout
    assert token not in listed and token[:13] in listed
    server.cli("token", "revoke", token[:13])  # the prefix shown by `token list`
    revoked = anonymous.get("/cases", headers={"Authorization": f"Bearer {token}"})
    assert_error(revoked, 401, "unauthenticated")


def test_every_route_but_health_needs_a_token(anonymous: httpx.Client) -> None:
    spec = anonymous.get("/openapi.json").json()
    checked = 0
    for path, operations in spec["paths"].items():
        for method in operations:
            url = re.sub(r"\{[^}]+\}", "x", path)
            response = anonymous.request(method.upper(), url, json={} if method == "post" else None)
            if path in ("/healthz", "/readyz"):
                assert response.status_code == 200, path
            else:
                assert_error(response, 401, "unauthenticated")
                checked += 1
    # 14, + ack, assign, tasks, notification ack (签收), + signatures, parties (会签),
    # + transfers, their list, accept, return (移送), + supervisions, their list, reply (督办),
    # + board, its cases (超期预警), + photo upload, a patrol's photos, a photo, + assessment
    # JSON, CSV, XLSX, charts (驾驶舱), + workflow migrations
    assert checked == 37


def test_a_token_needs_an_actor_of_the_grid(server: ApiServer) -> None:
    done = server.cli("token", "create", "--actor", "p-nobody", check=False)
    assert done.returncode == 1 and "unknown person 'p-nobody'" in done.stderr


# ---------------------------------------------------------------- authorization, visibility


def test_an_actor_without_the_role_gets_403(as_actor: Callable[[str], httpx.Client]) -> None:
    case_id = open_case(as_actor(REPORTER))["id"]
    response = as_actor(DISTRICT_LEADER).post(
        f"/cases/{case_id}/events", json={"trigger": "stop", "payload": {"stop_note": "x"}}
    )
    body = assert_error(response, 403, "not_permitted")
    assert body["details"]["actor"] == DISTRICT_LEADER
    assert "village.member" in body["details"]["roles"]
    outside = as_actor(ELSEWHERE).post(
        "/cases", json={"workflow": WORKFLOW, "unit": UNIT, "data": CASE_DATA}
    )
    assert_error(outside, 403, "not_permitted")


def test_a_person_sees_only_cases_in_their_units(as_actor: Callable[[str], httpx.Client]) -> None:
    mine = open_case(as_actor(REPORTER))["id"]
    theirs = open_case(as_actor(ELSEWHERE), unit="ddk-js-bh-1")["id"]

    def listed(actor: str, **params: Any) -> set[str]:
        page = as_actor(actor).get("/cases", params={"limit": 1000, **params}).json()
        return {c["id"] for c in page["items"]}

    assert mine in listed(REPORTER) and theirs not in listed(REPORTER)
    assert theirs in listed(ELSEWHERE) and mine not in listed(ELSEWHERE)
    assert {mine, theirs} <= listed(DISTRICT_LEADER)
    assert listed(REPORTER, unit="ddk-js") == set()  # asking for another town changes nothing
    for path in (f"/cases/{theirs}", f"/cases/{theirs}/history"):
        assert_error(as_actor(REPORTER).get(path), 404, "unknown_case")
    hidden = as_actor(REPORTER).post(f"/cases/{theirs}/events", json={"trigger": "stop"})
    assert_error(hidden, 404, "unknown_case")


def test_one_visibility_rule_answers_the_api_and_the_cli_alike(
    as_actor: Callable[[str], httpx.Client], server: ApiServer
) -> None:
    """A case of 八桥镇 is invisible to a 建胜镇 member over HTTP and with ``--as``."""
    case_id = open_case(as_actor(REPORTER))["id"]

    def over_http(actor: str) -> tuple[int, int, bool]:
        client = as_actor(actor)
        listed = client.get("/cases", params={"limit": 1000}).json()["items"]
        return (
            client.get(f"/cases/{case_id}").status_code,
            client.get(f"/cases/{case_id}/history").status_code,
            case_id in {c["id"] for c in listed},
        )

    def with_the_cli(actor: str) -> tuple[int, int, bool]:
        show = server.cli("case", "show", case_id, "--as", actor, "--json", check=False)
        history = server.cli("case", "history", case_id, "--as", actor, check=False)
        listed = json.loads(server.cli("case", "list", "--as", actor, "--json").stdout)
        for done in (show, history):
            assert done.returncode in (0, 1), done.stderr
            assert done.returncode == 0 or f"unknown case '{case_id}'" in done.stderr
        status = {0: 200, 1: 404}
        return (
            status[show.returncode],
            status[history.returncode],
            case_id in {c["id"] for c in listed},
        )

    assert over_http(ELSEWHERE) == with_the_cli(ELSEWHERE) == (404, 404, False)
    assert over_http(REPORTER) == with_the_cli(REPORTER) == (200, 200, True)
    assert over_http(DISTRICT_LEADER) == with_the_cli(DISTRICT_LEADER) == (200, 200, True)
    shown = json.loads(server.cli("case", "show", case_id, "--json").stdout)  # the operator
    assert shown["id"] == case_id


def test_the_case_list_pages_in_the_query_past_more_cases_of_another_town_than_the_limit(
    as_actor: Callable[[str], httpx.Client],
) -> None:
    """After the cursor come three cases of 八桥镇, then two of 建胜镇: a 建胜镇 member's
    page of one is still full, and its cursor walks exactly its own cases."""
    before = open_case(as_actor(REPORTER))["id"]
    for _ in range(3):
        open_case(as_actor(REPORTER))
    theirs = [open_case(as_actor(ELSEWHERE), unit="ddk-js-bh-1")["id"] for _ in range(2)]
    seen: list[str] = []
    cursor = before
    for _ in range(20):
        page = as_actor(ELSEWHERE).get("/cases", params={"limit": 1, "cursor": cursor}).json()
        assert len(page["items"]) == 1 or page["next_cursor"] is None
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == theirs


def test_a_service_account_acts_within_its_declared_units(
    as_actor: Callable[[str], httpx.Client],
) -> None:
    service = as_actor(SERVICE)
    case_id = open_case(service, unit="ddk-bq-xh-2")["id"]  # below its village: allowed
    stopped = service.post(
        f"/cases/{case_id}/events", json={"trigger": "stop", "payload": {"stop_note": "App 上报"}}
    )
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
    elsewhere = service.post(
        "/cases", json={"workflow": WORKFLOW, "unit": "ddk-bq-sl-1", "data": CASE_DATA}
    )
    assert_error(elsewhere, 403, "not_permitted")
    units = {c["unit"] for c in service.get("/cases", params={"limit": 1000}).json()["items"]}
    assert units and all(u.startswith("ddk-bq-xh") for u in units)


# ---------------------------------------------------------------- errors


def test_unknown_things_are_404(as_actor: Callable[[str], httpx.Client]) -> None:
    client = as_actor(REPORTER)
    assert assert_error(client.get("/cases/C00000000-NOPE"), 404, "unknown_case")["details"] == {
        "case": "C00000000-NOPE"
    }
    assert_error(
        client.post("/cases/C00000000-NOPE/events", json={"trigger": "stop"}), 404, "unknown_case"
    )
    assert_error(client.get("/workflows/nope"), 404, "unknown_workflow")
    assert_error(client.get("/grid/units/nope"), 404, "unknown_unit")
    missing = client.post("/cases", json={"workflow": "nope", "unit": UNIT, "data": {}})
    assert_error(missing, 404, "unknown_workflow")
    assert_error(client.get("/no/such/route"), 404, "not_found")
    assert_error(client.delete("/cases"), 405, "method_not_allowed")


def test_a_trigger_not_allowed_now_is_409_with_the_allowed_ones(
    as_actor: Callable[[str], httpx.Client],
) -> None:
    client = as_actor(REPORTER)
    case_id = open_case(client)["id"]
    body = assert_error(
        client.post(f"/cases/{case_id}/events", json={"trigger": "accept"}),
        409,
        "trigger_not_allowed",
    )
    assert body["message"] == (
        "trigger 'accept' is not allowed in state 'discovered'; allowed: stop, stop_fail"
    )
    assert body["details"] == {
        "trigger": "accept",
        "state": "discovered",
        "allowed": ["stop", "stop_fail"],
    }
    stale = client.post(
        f"/cases/{case_id}/events",
        json={"trigger": "stop", "payload": {"stop_note": "x"}, "revision": 7},
    )
    assert assert_error(stale, 409, "version_conflict")["details"]["actual"] == 1
    fresh = client.post(
        f"/cases/{case_id}/events",
        json={"trigger": "stop", "payload": {"stop_note": "x"}, "revision": 1},
    )
    assert fresh.status_code == 200
    assert fresh.json()["revision"] == 2
    assert "Warning" not in fresh.headers


@pytest.mark.parametrize("old_key", ["expected_version", "expected_revision", "row_version"])
def test_old_names_of_revision_are_still_accepted_with_a_warning(
    as_actor: Callable[[str], httpx.Client], old_key: str
) -> None:
    client = as_actor(REPORTER)
    case_id = open_case(client)["id"]
    url = f"/cases/{case_id}/events"
    stop = {"trigger": "stop", "payload": {"stop_note": "x"}}
    stale = assert_error(client.post(url, json={**stop, old_key: 7}), 409, "version_conflict")
    assert (stale["details"]["expected"], stale["details"]["actual"]) == (7, 1)
    twice = client.post(url, json={**stop, old_key: 1, "revision": 1})
    assert "revision" in assert_error(twice, 422, "invalid_request")["message"]
    done = client.post(url, json={**stop, old_key: 1})
    assert done.status_code == 200
    assert done.json()["revision"] == 2
    assert done.headers["Warning"] == f'299 - "{old_key} is deprecated; use revision"'


def test_bad_payloads_are_422_naming_the_field(as_actor: Callable[[str], httpx.Client]) -> None:
    client = as_actor(REPORTER)
    case_id = open_case(client)["id"]
    url = f"/cases/{case_id}/events"
    missing = assert_error(client.post(url, json={"trigger": "stop"}), 422, "invalid_data")
    assert missing["details"]["fields"] == {"stop_note": "is required"}
    wrong = client.post(
        url, json={"trigger": "stop", "payload": {"stop_note": "x", "area_m2": "big"}}
    )
    assert "area_m2" in assert_error(wrong, 422, "invalid_data")["details"]["fields"]
    too_long = client.post(url, json={"trigger": "stop", "payload": {"stop_note": "长" * 2001}})
    reason = assert_error(too_long, 422, "invalid_data")["details"]["fields"]["stop_note"]
    assert "2,001 characters" in reason and "at most 2,000" in reason
    long_case = client.post(
        "/cases",
        json={"workflow": WORKFLOW, "unit": UNIT, "data": {**CASE_DATA, "address": "x" * 2001}},
    )
    assert "address" in assert_error(long_case, 422, "invalid_data")["details"]["fields"]
    unknown = assert_error(client.post(url, json={"trigger": "stpo"}), 422, "unknown_trigger")
    assert unknown["details"]["allowed"] == ["stop", "stop_fail"]
    no_trigger = assert_error(client.post(url, json={"payload": {}}), 422, "invalid_request")
    assert "trigger" in no_trigger["details"]["fields"]
    extra = assert_error(
        client.post(url, json={"trigger": "stop", "zzz": 1}), 422, "invalid_request"
    )
    assert "zzz" in extra["details"]["fields"]
    broken = client.post(
        url, content=b'{"trigger": "st', headers={"Content-Type": "application/json"}
    )
    assert "body" in assert_error(broken, 422, "invalid_request")["details"]["fields"]
    nul = client.post(url, json={"trigger": "stop", "payload": {"stop_note": "a\u0000b"}})
    assert "payload" in assert_error(nul, 422, "invalid_request")["details"]["fields"]
    nan = client.post(
        url,
        content=b'{"trigger": "stop", "payload": {"stop_note": "x", "area_m2": NaN}}',
        headers={"Content-Type": "application/json"},
    )
    assert nan.status_code == 422, nan.text
    create = client.post(
        "/cases", json={"workflow": WORKFLOW, "unit": UNIT, "data": {"address": 1}}
    )
    fields = assert_error(create, 422, "invalid_data")["details"]["fields"]
    assert {"address", "land_type", "source"} <= set(fields)
    bad_query = assert_error(client.get("/cases", params={"limit": 0}), 422, "invalid_request")
    assert "query.limit" in bad_query["details"]["fields"]
    assert_error(client.get("/cases", params={"unit": "nope"}), 422, "invalid_data")
    typo = assert_error(client.get("/cases", params={"stat": "open"}), 422, "invalid_request")
    assert "query.stat" in typo["details"]["fields"]
    not_utf8 = client.post(url, content=b'{"trigger": "\xff"}', headers=JSON)
    assert "body" in assert_error(not_utf8, 422, "invalid_request")["details"]["fields"]
    assert_error(client.get("/cases/a%00b"), 422, "invalid_request")


def test_a_date_beyond_any_calendar_is_422_not_500(
    as_actor: Callable[[str], httpx.Client],
) -> None:
    """``rectify_by`` sets the deadline of 整改中: year 9999 would overflow it."""
    case_id = open_case(as_actor(REPORTER))["id"]
    for trigger, actor, payload, _ in LIFECYCLE[:4]:  # up to 已立案 (filed)
        response = as_actor(actor).post(
            f"/cases/{case_id}/events", json={"trigger": trigger, "payload": payload}
        )
        assert response.status_code == 200, response.text
    trigger, actor, payload, _ = LIFECYCLE[4]
    far = {**payload, "rectify_by": "9999-12-31"}
    response = as_actor(actor).post(
        f"/cases/{case_id}/events", json={"trigger": trigger, "payload": far}
    )
    assert "rectify_by" in assert_error(response, 422, "invalid_data")["details"]["fields"]


def test_a_body_over_the_limit_is_413(
    as_actor: Callable[[str], httpx.Client], server: ApiServer
) -> None:
    client = as_actor(REPORTER)
    big = {
        "workflow": WORKFLOW,
        "unit": UNIT,
        "data": {**CASE_DATA, "party": "x" * server.max_body_bytes},
    }
    body = assert_error(client.post("/cases", json=big), 413, "body_too_large")
    assert body["details"] == {"max_bytes": server.max_body_bytes}

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield json.dumps(big).encode()

    assert_error(client.post("/cases", content=chunks()), 413, "body_too_large")


# ---------------------------------------------------------------- reading


def test_list_filters_and_pages(as_actor: Callable[[str], httpx.Client], server: ApiServer) -> None:
    client = as_actor("p-bq-xh-leader")  # 新华村 and, as a town member, 八桥镇
    opened = [open_case(client, unit="ddk-bq-xh-3")["id"] for _ in range(3)]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, Any] = {"unit": "ddk-bq-xh-3", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/cases", params=params).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and set(opened) <= set(seen) and len(seen) == len(set(seen))

    late = opened[0]
    engine = make_engine(server.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                update(cases)
                .where(cases.c.id == late)
                .values(deadline_at=datetime.now(UTC) - timedelta(hours=1))
            )
    finally:
        engine.dispose()

    def ids(**params: Any) -> set[str]:
        page = client.get("/cases", params={"unit": "ddk-bq-xh-3", "limit": 1000, **params})
        assert page.status_code == 200, page.text
        return {c["id"] for c in page.json()["items"]}

    assert ids(overdue="true") == {late}
    assert late not in ids(overdue="false") and set(opened[1:]) <= ids(overdue="false")
    assert set(opened) <= ids(state="discovered", open="true", workflow=WORKFLOW)
    assert ids(open="false") == set() and ids(state="closed") == set()


def test_workflows_come_with_their_definition_and_a_mermaid_diagram(
    as_actor: Callable[[str], httpx.Client],
) -> None:
    client = as_actor(REPORTER)
    listed = client.get("/workflows").json()
    # the bundled folder: the farmland workflow and the satellite-spot one
    assert sorted((w["workflow"], w["latest_version"]) for w in listed) == [
        (WORKFLOW, 1),
        ("satellite_spot", 1),
    ]
    shown = client.get(f"/workflows/{WORKFLOW}").json()
    assert shown["version"] == 1 and [v["version"] for v in shown["versions"]] == [1]
    assert shown["diagram"]["mermaid"].startswith("stateDiagram-v2")
    assert "discovered" in shown["diagram"]["mermaid"]
    definition = shown["definition"]
    assert definition["initial"] == "discovered"
    assert {s["name"] for s in definition["states"]} >= {"discovered", "closed", "rectifying"}
    assert shown["source"].lstrip().startswith("#")
    assert_error(
        client.get(f"/workflows/{WORKFLOW}", params={"version": 9}), 404, "unknown_workflow"
    )


def test_a_grid_unit_shows_its_chain_children_and_role_holders(
    as_actor: Callable[[str], httpx.Client],
) -> None:
    unit = as_actor(REPORTER).get("/grid/units/ddk-bq-xh").json()
    assert (unit["name"], unit["level"], unit["parent"]) == ("新华村", "village", "ddk-bq")
    assert [u["code"] for u in unit["chain"]] == ["ddk-bq", "ddk"]
    assert [u["code"] for u in unit["children"]] == ["ddk-bq-xh-1", "ddk-bq-xh-2", "ddk-bq-xh-3"]
    holders = {(r["person"], r["role"], r["kind"]) for r in unit["roles"]}
    assert ("p-bq-xh-leader", "village.leader", "person") in holders
    assert (SERVICE, "village.member", "service") in holders
    assert not any("phone" in r or "email" in r for r in unit["roles"])
    # Another town's member sees its own chain (the district) but not this village.
    assert as_actor(ELSEWHERE).get("/grid/units/ddk").status_code == 200
    assert_error(as_actor(ELSEWHERE).get("/grid/units/ddk-bq-xh"), 404, "unknown_unit")


METRIC_LINE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>[^}]*)\})? (?P<value>[-+0-9.eE]+|NaN)$"
)
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            assert line == "" or line.startswith(("# HELP ", "# TYPE ")), line
            continue
        match = METRIC_LINE.match(line)
        assert match, f"not a Prometheus sample: {line!r}"
        labels = frozenset(LABEL.findall(match["labels"] or ""))
        samples[(match["name"], labels)] = float(match["value"])
    return samples


def test_metrics_are_prometheus_text(
    as_actor: Callable[[str], httpx.Client], anonymous: httpx.Client
) -> None:
    client = as_actor(REPORTER)
    open_case(client)
    client.post("/cases/C00000000-NOPE/events", json={"trigger": "stop"})
    # The installation's counts are for its operators (api.metrics_roles: district.office).
    assert_error(client.get("/metrics"), 403, "not_permitted")
    response = as_actor(OFFICE).get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_metrics(response.text)
    accepted = frozenset({("kind", "create"), ("outcome", "accepted"), ("reason", "")})
    assert samples[("gengbao_events_total", accepted)] >= 1
    assert samples[("gengbao_timer_loop_running", frozenset())] == 1
    open_discovered = frozenset({("workflow", WORKFLOW), ("state", "discovered")})
    assert samples[("gengbao_cases_open", open_discovered)] >= 1
    assert any(name == "gengbao_timers_pending" for name, _ in samples)
    assert_error(anonymous.get("/metrics"), 401, "unauthenticated")


def test_openapi_lists_the_contract_routes(anonymous: httpx.Client) -> None:
    spec = anonymous.get("/openapi.json").json()
    routes = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    assert routes == set(CONTRACT_ROUTES)


def test_the_api_docs_page_needs_no_internet(anonymous: httpx.Client) -> None:
    page = anonymous.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/docs/assets/") for s in sources), sources
    assert "//" not in "".join(sources)  # no CDN: every asset is served by the service itself
    for source in sources:
        asset = anonymous.get(source)
        assert asset.status_code == 200 and len(asset.content) > 100, source


# ---------------------------------------------------------------- shutdown (keep last)


def test_sigterm_finishes_the_request_in_flight_and_exits_0(
    server: ApiServer, tokens: dict[str, str]
) -> None:
    sent_half = threading.Event()
    go_on = threading.Event()
    body = json.dumps({"workflow": WORKFLOW, "unit": UNIT, "data": CASE_DATA}).encode()

    def slow_body() -> Iterator[bytes]:
        yield body[:20]
        sent_half.set()
        assert go_on.wait(30)
        yield body[20:]

    result: dict[str, httpx.Response] = {}

    def post() -> None:
        with server.client(tokens[REPORTER]) as client:
            result["response"] = client.post(
                "/cases", content=slow_body(), headers={"Content-Type": "application/json"}
            )

    worker = threading.Thread(target=post)
    worker.start()
    try:
        assert sent_half.wait(30)
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while server.accepting() and datetime.now(UTC) < deadline:  # it stops listening first
            time.sleep(0.05)
        assert not server.accepting()
    finally:
        go_on.set()
        worker.join(60)
    assert result["response"].status_code == 201, result["response"].text
    assert server.process.wait(60) == 0
    log = server.log()
    assert "Traceback" not in log, log
