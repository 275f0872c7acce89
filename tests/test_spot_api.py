"""Geometry out over HTTP: a spot's shapes in ``GET /cases/{id}``, a unit's boundary in
``GET /grid/units/{code}``, both GeoJSON a map can draw; a broken shape is refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from engine.geo.shapes import parse_geometry
from tests.support.api_server import ApiServer, assert_error
from tests.support.geometry import square

ISSUER = "p-ddk-office1"
VILLAGE = "p-bq-xh-leader"
SPOT = {
    "spot_no": "500104-2026-09-0101",
    "land_type": "一般耕地",
    "area_m2": 900,
    "batch": "2026-09",
    "verify_by": "2026-09-30",
}


@pytest.fixture(scope="module")
def clients(server: ApiServer) -> Iterator[dict[str, httpx.Client]]:
    tokens = server.tokens([ISSUER, VILLAGE], name="spot-api")
    made = {actor: server.client(token) for actor, token in tokens.items()}
    try:
        yield made
    finally:
        for client in made.values():
            client.close()


def test_a_case_answers_its_geometry_fields_as_geojson(clients: dict[str, httpx.Client]) -> None:
    outline = square(106.4700, 29.4800, 0.0003)
    feature = {"type": "Feature", "properties": {"name": "x"}, "geometry": outline}
    created = clients[ISSUER].post(
        "/cases",
        json={
            "workflow": "satellite_spot",
            "unit": "ddk-bq-xh",
            "data": {**SPOT, "outline": feature},
        },
    )
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]
    shown = clients[VILLAGE].get(f"/cases/{case_id}").json()
    assert shown["data"]["outline"] == outline  # a Feature is kept as its geometry
    parse_geometry(shown["data"]["outline"])  # valid GeoJSON: closed ring, lng/lat
    position = {"type": "Point", "coordinates": [106.47015, 29.48012]}
    payload: dict[str, Any] = {
        "check_note": "现场核查",
        "photo_hashes": ["ab" * 32],
        "check_position": position,
    }
    moved = clients[VILLAGE].post(
        f"/cases/{case_id}/events", json={"trigger": "check", "payload": payload}
    )
    assert moved.status_code == 200, moved.text
    shown = clients[VILLAGE].get(f"/cases/{case_id}").json()
    assert (shown["state"], shown["data"]["check_position"]) == ("checked", position)


def test_a_broken_shape_is_refused_and_writes_nothing(clients: dict[str, httpx.Client]) -> None:
    ring = [[106.47, 29.48], [106.48, 29.48], [106.48, 29.49], [106.47, 29.49]]  # not closed
    before = clients[ISSUER].get("/cases", params={"unit": "ddk-bq-sl"}).json()
    refused = clients[ISSUER].post(
        "/cases",
        json={
            "workflow": "satellite_spot",
            "unit": "ddk-bq-sl",
            "data": {**SPOT, "outline": {"type": "Polygon", "coordinates": [ring]}},
        },
    )
    body = assert_error(refused, 422, "invalid_data")
    assert "outline" in refused.text and "not closed" in refused.text, body
    assert clients[ISSUER].get("/cases", params={"unit": "ddk-bq-sl"}).json() == before


def test_a_unit_answers_its_boundary_as_geojson(clients: dict[str, httpx.Client]) -> None:
    village = clients[VILLAGE].get("/grid/units/ddk-bq-xh").json()
    ring = [[106.46, 29.46], [106.48, 29.46], [106.48, 29.5], [106.46, 29.5], [106.46, 29.46]]
    assert village["boundary"] == {"type": "Polygon", "coordinates": [ring]}
    parse_geometry(village["boundary"])
    group = clients[VILLAGE].get("/grid/units/ddk-bq-xh-1").json()
    assert group["boundary"] is None  # the demo grid draws no group boundaries
