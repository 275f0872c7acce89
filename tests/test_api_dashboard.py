"""The dashboard routes through a real ``gengbao serve``: ``/board``, patrol photos and
``/assessment`` (JSON, CSV, XLSX, SVG), each scoped to the token's actor.

One server per backend for the module; cases and patrols are made over HTTP by the
people of 新华村 (八桥镇) and 百花村 (建胜镇).  The server runs on the real clock, so
the tests check scope and shapes here; the bucket boundaries are in test_board.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from tests.support.api_server import PHOTO_MAX_BYTES, ApiServer, assert_error
from tests.support.farmland import CASE_DATA, SH

XH_REPORTER = "p-bq-xh-1-member"  # 新华村一组
BH_REPORTER = "p-js-bh-1-member"  # 百花村一社
MEMBER = "p-bq-xh-member1"  # 新华村
TOWN = "p-bq-office"  # 八桥镇
OTHER_TOWN = "p-js-office"  # 建胜镇
ACTORS = [XH_REPORTER, BH_REPORTER, MEMBER, TOWN, OTHER_TOWN]
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"photo of the site" * 20
PERIOD = dt.datetime.now(SH).strftime("%Y-%m")  # the real server's month, in its zone


@pytest.fixture(scope="module")
def as_actor(server: ApiServer) -> Iterator[Callable[[str], httpx.Client]]:
    clients = {actor: server.client(token) for actor, token in server.tokens(ACTORS).items()}
    yield clients.__getitem__
    for c in clients.values():
        c.close()


@pytest.fixture(scope="module")
def opened(as_actor: Callable[[str], httpx.Client]) -> dict[str, str]:
    """One case in 新华村一组 (八桥镇), one in 百花村一社 (建胜镇)."""
    made = {}
    for name, reporter, unit in (
        ("bq", XH_REPORTER, "ddk-bq-xh-1"),
        ("js", BH_REPORTER, "ddk-js-bh-1"),
    ):
        body = {"workflow": "farmland_violation", "unit": unit, "data": CASE_DATA}
        response = as_actor(reporter).post("/cases", json=body)
        assert response.status_code == 201, response.text
        made[name] = response.json()["id"]
    return made


def board_of(client: httpx.Client, **params: Any) -> dict[str, dict[str, Any]]:
    response = client.get("/board", params=params)
    assert response.status_code == 200, response.text
    return {u["unit"]: u for u in response.json()["units"]}


def test_the_board_counts_the_callers_units_only(
    as_actor: Callable[[str], httpx.Client], opened: dict[str, str]
) -> None:
    town = board_of(as_actor(TOWN))
    assert town["ddk-bq"]["open"] >= 1 and town["ddk-bq-xh-1"]["open"] >= 1
    assert not any(code.startswith("ddk-js") for code in town) and "ddk" not in town
    other = board_of(as_actor(OTHER_TOWN), workflow="farmland_violation")
    assert other["ddk-js"]["open"] >= 1 and not any(c.startswith("ddk-bq") for c in other)
    page = as_actor(TOWN).get("/board/cases", params={"unit": "ddk-bq", "bucket": "open"})
    assert page.status_code == 200, page.text
    ids = [c["id"] for c in page.json()["items"]]
    assert opened["bq"] in ids and opened["js"] not in ids
    assert_error(as_actor(TOWN).get("/board", params={"unit": "ddk-js"}), 404, "unknown_unit")
    cell = {"unit": "ddk-js-bh", "bucket": "open"}
    assert_error(as_actor(TOWN).get("/board/cases", params=cell), 404, "unknown_unit")
    bad = as_actor(TOWN).get("/board/cases", params={"unit": "ddk-bq", "bucket": "late"})
    assert_error(bad, 422, "invalid_request")


@pytest.fixture(scope="module")
def patrol(as_actor: Callable[[str], httpx.Client]) -> str:
    response = as_actor(MEMBER).post("/patrols", json={"unit": "ddk-bq-xh", "findings": "开挖"})
    assert response.status_code == 201, response.text
    patrol_id: str = response.json()["id"]
    return patrol_id


def upload(client: httpx.Client, patrol_id: str, content: bytes, name: str = "a.jpg") -> Any:
    files = {"file": (name, content, "image/jpeg")}
    return client.post(f"/patrols/{patrol_id}/photos", files=files)


def test_a_photo_uploaded_from_the_field_is_served_to_its_town_only(
    as_actor: Callable[[str], httpx.Client], patrol: str
) -> None:
    first = upload(as_actor(MEMBER), patrol, JPEG)
    assert first.status_code == 201, first.text
    photo = first.json()
    digest = hashlib.sha256(JPEG).hexdigest()
    assert (photo["sha256"], photo["media_type"], photo["new"]) == (digest, "image/jpeg", True)
    again = upload(as_actor(MEMBER), patrol, JPEG, "same-again.jpg")
    assert again.status_code == 201 and again.json()["new"] is False
    served = as_actor(TOWN).get(photo["url"])
    assert served.status_code == 200 and served.content == JPEG
    assert served.headers["content-type"] == "image/jpeg"
    listed = as_actor(TOWN).get(f"/patrols/{patrol}/photos").json()
    assert [p["sha256"] for p in listed] == [digest]
    assert_error(as_actor(OTHER_TOWN).get(photo["url"]), 404, "unknown_photo")
    assert_error(as_actor(OTHER_TOWN).get(f"/patrols/{patrol}/photos"), 404, "unknown_patrol")
    assert_error(upload(as_actor(OTHER_TOWN), patrol, JPEG), 404, "unknown_patrol")
    assert_error(as_actor(TOWN).get("/photos/not-a-hash"), 422, "invalid_request")


def test_a_wrong_type_or_an_oversized_photo_is_refused(
    as_actor: Callable[[str], httpx.Client], patrol: str
) -> None:
    gif = upload(as_actor(MEMBER), patrol, b"GIF89a" + b"\x00" * 100, "fake.jpg")
    assert_error(gif, 415, "unsupported_photo_type")
    big = b"\xff\xd8\xff" + b"\x00" * PHOTO_MAX_BYTES
    assert_error(upload(as_actor(MEMBER), patrol, big), 413, "photo_too_large")
    huge = b"\xff\xd8\xff" + b"\x00" * (4 * PHOTO_MAX_BYTES)
    assert_error(upload(as_actor(MEMBER), patrol, huge), 413, "body_too_large")
    listed = as_actor(MEMBER).get(f"/patrols/{patrol}/photos").json()
    assert all(p["bytes"] < PHOTO_MAX_BYTES for p in listed)


def test_the_assessment_as_json_csv_xlsx_and_svg(
    as_actor: Callable[[str], httpx.Client], opened: dict[str, str]
) -> None:
    client = as_actor(TOWN)
    report = client.get("/assessment", params={"period": PERIOD})
    assert report.status_code == 200, report.text
    rows = report.json()["rows"]
    codes = [r["unit"] for r in rows]
    assert codes[0] == "ddk-bq" and all(c.startswith("ddk-bq") for c in codes)
    assert rows[0]["cases"] >= 1

    text = client.get("/assessment.csv", params={"period": PERIOD})
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(text.content.decode("utf-8-sig"))))
    assert [r[0] for r in table[1:]] == codes

    book = client.get("/assessment.xlsx", params={"period": PERIOD, "level": "village"})
    assert book.status_code == 200 and "attachment" in book.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(book.content)).active
    assert sheet is not None
    villages = [r[0] for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert villages and all(str(c).count("-") == 2 for c in villages)

    for name in ("scores", "patrols", "overdue"):
        svg = client.get(f"/assessment/charts/{name}.svg", params={"period": PERIOD})
        assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
        ET.fromstring(svg.text)
    assert_error(
        client.get("/assessment/charts/pie.svg", params={"period": PERIOD}), 422, "invalid_request"
    )
    assert_error(client.get("/assessment"), 422, "invalid_data")
    assert_error(client.get("/assessment", params={"period": "2026-13"}), 422, "invalid_data")
    hidden = client.get("/assessment", params={"period": PERIOD, "unit": "ddk-js"})
    assert_error(hidden, 404, "unknown_unit")
