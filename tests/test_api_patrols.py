"""``POST /patrols``, ``GET /patrols`` and ``GET /patrols/{id}`` through a real ``gengbao serve``.

Only people holding a role on the unit's chain may record a patrol there or
read it; everyone else gets 403 on POST and does not see it in the list (404
for one patrol).  One server per backend for the module, tokens made with the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.api_server import SERVICE, SERVICE_UNIT, ApiServer, assert_error

VILLAGE = "ddk-bq-xh"  # 八桥镇 / 新华村
GROUP = "ddk-bq-xh-1"  # 新华村一组
MEMBER = "p-bq-xh-member1"  # village.member of 新华村
GROUP_MEMBER = "p-bq-xh-1-member"  # group.member of 新华村一组: below the village, not on its chain
TOWN_LEADER = "p-bq-leader"  # 八桥镇: an ancestor of 新华村
ELSEWHERE = "p-js-office"  # 建胜镇: another town
ACTORS = [MEMBER, GROUP_MEMBER, TOWN_LEADER, ELSEWHERE, SERVICE]
ROUTE = [[106.48, 29.48], [106.49, 29.481]]


@pytest.fixture(scope="module")
def as_actor(server: ApiServer) -> Iterator[Callable[[str], httpx.Client]]:
    clients = {actor: server.client(token) for actor, token in server.tokens(ACTORS).items()}
    yield clients.__getitem__
    for c in clients.values():
        c.close()


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def record(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/patrols", json={"unit": VILLAGE, **body})
    assert response.status_code == 201, response.text
    patrol: dict[str, Any] = response.json()
    return patrol


def listed(client: httpx.Client, **params: Any) -> list[str]:
    response = client.get("/patrols", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["items"]]


def test_a_village_member_records_a_patrol_and_reads_it_back(
    as_actor: Callable[[str], httpx.Client],
) -> None:
    member = as_actor(MEMBER)
    started, ended = ago(hours=3), ago(hours=1)
    patrol = record(
        member,
        started=started,
        ended=ended,
        findings="三组王家湾有新开挖痕迹",
        suspected=[{"address": "三组王家湾", "note": "疑似挖塘"}],
        route=ROUTE,
        area_m2=120000,
        attachments=["IMG_0001.jpg", "https://example.org/p/2.jpg"],
    )
    assert patrol["id"].startswith("P")
    assert (patrol["unit"], patrol["unit_name"]) == (VILLAGE, "新华村")
    assert patrol["actor"] == MEMBER  # the token's owner, never a body field
    assert datetime.fromisoformat(patrol["started_at"]) == datetime.fromisoformat(started)
    assert datetime.fromisoformat(patrol["ended_at"]) == datetime.fromisoformat(ended)
    assert patrol["route"] == ROUTE and patrol["area_m2"] == 120000
    assert patrol["suspected"] == [{"address": "三组王家湾", "note": "疑似挖塘"}]
    assert patrol["attachments"] == ["IMG_0001.jpg", "https://example.org/p/2.jpg"]
    assert patrol["cases"] == [] and isinstance(patrol["credited"], list)

    shown = member.get(f"/patrols/{patrol['id']}")
    assert shown.status_code == 200, shown.text
    assert {k: v for k, v in shown.json().items() if k != "credited"} == {
        k: v for k, v in patrol.items() if k != "credited"
    }
    assert patrol["id"] in listed(member)
    assert patrol["id"] in listed(as_actor(TOWN_LEADER), unit=VILLAGE)  # an ancestor reads it
    assert as_actor(TOWN_LEADER).get(f"/patrols/{patrol['id']}").status_code == 200


def test_a_time_without_offset_is_in_the_server_time_zone(
    as_actor: Callable[[str], httpx.Client],
) -> None:
    local = (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(days=1)).replace(
        microsecond=0, tzinfo=None
    )
    patrol = record(as_actor(MEMBER), started=local.isoformat())
    stored = datetime.fromisoformat(patrol["started_at"])
    assert stored == local.replace(tzinfo=ZoneInfo("Asia/Shanghai"))


def test_a_service_account_records_as_itself(as_actor: Callable[[str], httpx.Client]) -> None:
    patrol = record(as_actor(SERVICE), unit=SERVICE_UNIT, findings="App 上报")
    assert patrol["actor"] == SERVICE


def test_people_off_the_chain_may_not_record_or_read(
    as_actor: Callable[[str], httpx.Client],
) -> None:
    patrol = record(as_actor(MEMBER), findings="正常")
    for outsider in (ELSEWHERE, GROUP_MEMBER):  # another town; a unit below, not on the chain
        refused = assert_error(
            as_actor(outsider).post("/patrols", json={"unit": VILLAGE}), 403, "not_permitted"
        )
        assert refused["details"]["actor"] == outsider and refused["details"]["unit"] == VILLAGE
        assert patrol["id"] not in listed(as_actor(outsider))
        assert patrol["id"] not in listed(as_actor(outsider), unit=VILLAGE)
        hidden = as_actor(outsider).get(f"/patrols/{patrol['id']}")
        assert assert_error(hidden, 404, "unknown_patrol")["details"] == {"patrol": patrol["id"]}
    # ... while the group member's own patrols, of their group, are theirs to read
    own = record(as_actor(GROUP_MEMBER), unit=GROUP)
    assert own["id"] in listed(as_actor(GROUP_MEMBER))
    assert own["id"] in listed(as_actor(MEMBER), unit=GROUP)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "unit"),
        ({"unit": VILLAGE, "colour": "red"}, "colour"),
        ({"unit": VILLAGE, "route": [[106.48]]}, "route.0"),
        ({"unit": VILLAGE, "route": [[200.0, 29.48]]}, "route"),
        ({"unit": VILLAGE, "area_m2": -1}, "area_m2"),
        ({"unit": VILLAGE, "started": "yesterday"}, "started"),
        ({"unit": VILLAGE, "started": "2999-01-01T00:00:00+08:00"}, "started"),
        ({"unit": VILLAGE, "started": ago(hours=1), "ended": ago(hours=2)}, "ended"),
        ({"unit": VILLAGE, "started": "0001-01-01T00:00:00"}, "started"),
        ({"unit": VILLAGE, "attachments": [""]}, "attachments.0"),
        ({"unit": VILLAGE, "suspected": "not a list"}, "suspected"),
        ({"unit": VILLAGE, "findings": "a\x00b"}, "findings"),
    ],
)
def test_a_bad_body_is_422_naming_the_field(
    as_actor: Callable[[str], httpx.Client], body: dict[str, Any], field: str
) -> None:
    response = as_actor(MEMBER).post("/patrols", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["details"]["fields"], response.text


def test_an_idempotency_key_is_refused_not_ignored(
    as_actor: Callable[[str], httpx.Client],
) -> None:
    before = listed(as_actor(MEMBER))
    response = as_actor(MEMBER).post(
        "/patrols", json={"unit": VILLAGE}, headers={"Idempotency-Key": "k-1"}
    )
    assert "Idempotency-Key" in assert_error(response, 422, "invalid_data")["details"]["fields"]
    assert listed(as_actor(MEMBER)) == before


def test_unknown_things(as_actor: Callable[[str], httpx.Client]) -> None:
    member = as_actor(MEMBER)
    assert_error(member.get("/patrols/P00000000-NOPE"), 404, "unknown_patrol")
    assert_error(member.post("/patrols", json={"unit": "nope"}), 404, "unknown_unit")
    bad_unit = assert_error(member.get("/patrols", params={"unit": "nope"}), 422, "invalid_data")
    assert "unit" in bad_unit["details"]["fields"]
    bad_cursor = member.get("/patrols", params={"cursor": "P00000000-NOPE"})
    assert "cursor" in assert_error(bad_cursor, 422, "invalid_data")["details"]["fields"]
    bad_date = member.get("/patrols", params={"from": "2026-02-30"})
    assert "from" in assert_error(bad_date, 422, "invalid_data")["details"]["fields"]
    not_a_date = member.get("/patrols", params={"to": "0.0"})
    assert "query.to" in assert_error(not_a_date, 422, "invalid_request")["details"]["fields"]
    unknown = member.get("/patrols", params={"colour": "red"})
    assert "query.colour" in assert_error(unknown, 422, "invalid_request")["details"]["fields"]


def test_dates_filter_and_the_cursor_pages_in_start_order(
    as_actor: Callable[[str], httpx.Client],
) -> None:
    leader = as_actor(TOWN_LEADER)
    # recorded newest-start first, so the ids' order differs from the start order
    made = [record(as_actor(MEMBER), unit=GROUP, started=ago(days=d)) for d in (40, 50, 60)]
    oldest_first = [p["id"] for p in reversed(made)]
    zone = ZoneInfo("Asia/Shanghai")
    first = datetime.fromisoformat(made[2]["started_at"]).astimezone(zone).date()
    last = datetime.fromisoformat(made[0]["started_at"]).astimezone(zone).date()
    window = {"unit": GROUP, "from": first.isoformat(), "to": last.isoformat()}
    assert listed(leader, **window) == oldest_first
    only_middle = {**window, "from": (first + timedelta(days=5)).isoformat()}
    assert listed(leader, **{**only_middle, "to": (last - timedelta(days=5)).isoformat()}) == [
        made[1]["id"]
    ]
    pages: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {**window, "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = leader.get("/patrols", params=params).json()
        pages += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == oldest_first
    backwards = leader.get("/patrols", params={"from": "2026-09-02", "to": "2026-09-01"})
    assert "to" in assert_error(backwards, 422, "invalid_data")["details"]["fields"]
    edges = leader.get("/patrols", params={"from": "0001-01-01", "to": "9999-12-31"})
    assert edges.status_code == 200, edges.text


def test_the_list_pages_in_the_query_past_more_patrols_of_another_town_than_the_limit(
    as_actor: Callable[[str], httpx.Client],
) -> None:
    """Older patrols of 建胜镇 come first in start order; a page of one is still full."""
    theirs = [record(as_actor(ELSEWHERE), unit="ddk-js", started=ago(days=300, hours=h))["id"]
              for h in (3, 2, 1)]  # fmt: skip
    mine = [record(as_actor(MEMBER), started=ago(days=299, hours=h))["id"] for h in (2, 1)]
    zone = ZoneInfo("Asia/Shanghai")
    day = (datetime.now(UTC) - timedelta(days=299)).astimezone(zone).date()
    window = {"from": (day - timedelta(days=3)).isoformat(), "to": day.isoformat()}

    def pages(actor: str) -> list[str]:
        seen: list[str] = []
        cursor = None
        for _ in range(20):
            params: dict[str, str | int] = {**window, "limit": 1}
            if cursor:
                params["cursor"] = cursor
            page = as_actor(actor).get("/patrols", params=params).json()
            assert len(page["items"]) == 1 or page["next_cursor"] is None
            seen += [p["id"] for p in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        return seen

    assert pages(MEMBER) == mine
    assert pages(ELSEWHERE) == theirs
