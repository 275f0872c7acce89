"""The patrol page (巡查, ``/ui/patrols``) over HTTP, on both backends with the fake clock.

A 网格员 of 新华村一组 records a patrol with two real PNG photos through the form; the
patrol is in the ledger, the photos under their SHA-256 in the data folder, and the
village's period counts it.  A refused form (a text file named ``.jpg``, a photo over
``photos.max_bytes``, a unit outside the person's scope, no unit, a time in the future)
comes back as typed with the message at its field, and nothing is written; so is a form
without its CSRF token (403) or over the body limit (413).  Another village's person
sees neither the patrol nor its photo.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.api.app import create_api
from engine.app import App
from engine.pages.patrols import form_limit
from tests.support.farmland import REPORTER, UNIT
from tests.support.images import png
from tests.support.pages import CSRF, LEADER, OTHER_MEMBER, OTHER_UNIT, PASSWORD, signed_in
from tests.support.patrolling import write_rules
from tests.support.serving import serving

MAX_BYTES = 2000
RED, GREEN = png((200, 30, 30)), png((30, 160, 60), 6, 6)
Files = list[tuple[str, tuple[str, bytes, str]]]


@pytest.fixture
def app_settings(tmp_path: Path) -> dict[str, Any]:
    return {"data_dir": tmp_path / "var", "photos": {"max_bytes": MAX_BYTES}}


@pytest.fixture
def site(app: App, tmp_path: Path) -> Iterator[str]:
    app.patrols.load_rules(write_rules(tmp_path))  # villages weekly, towns monthly
    for person in (REPORTER, LEADER, OTHER_MEMBER):
        app.credentials.set_password(person, PASSWORD)
    with serving(create_api(app)) as base:
        yield base


def csrf_of(client: httpx.Client) -> str:
    found = CSRF.search(client.get("/ui/patrols").text)
    assert found is not None
    return found.group(1)


def stored(app: App) -> list[Path]:
    folder = app.photos.folder
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def written(app: App) -> tuple[int, int]:
    """(patrols in the ledger, photo files in the data folder)."""
    return len(app.patrols.ledger.list()), len(stored(app))


def form(**changes: str) -> dict[str, str]:
    return {
        "unit": UNIT,
        "started": "2026-09-18T09:30",
        "route_note": "一组王家湾—二组水库",
        "findings": "二组水库边有新开挖痕迹",
        **changes,
    }


def photos(*named: tuple[str, bytes]) -> Files:
    return [("photos", (name, content, "image/jpeg")) for name, content in named]


def test_a_patrol_with_two_photos_is_in_the_ledger_and_counted(app: App, site: str) -> None:
    with signed_in(site, REPORTER) as member:
        empty = member.get("/ui/patrols")
        assert empty.status_code == 200
        assert 'enctype="multipart/form-data"' in empty.text
        assert 'accept="image/*" capture="environment" multiple' in empty.text
        assert f'<option value="{UNIT}" selected>' in empty.text  # the one unit of theirs
        assert 'value="2026-09-18T10:00"' in empty.text  # now, in Shanghai
        assert "近 60 天没有巡查记录" in empty.text
        sent = member.post(
            "/ui/patrols",
            data={"csrf": csrf_of(member), **form()},
            files=photos(("IMG_0001.jpg", RED), ("IMG_0002.png", GREEN)),
        )
        assert sent.status_code == 303, sent.text
        assert sent.headers["location"].startswith("/ui/patrols?recorded=P")
        shown = member.get(sent.headers["location"])
        assert "巡查已记录" in shown.text
        assert "巡查路线：一组王家湾—二组水库" in shown.text
        assert "二组水库边有新开挖痕迹" in shown.text
        assert "照片 2 张" in shown.text
        (patrol,) = app.patrols.ledger.list()
        assert patrol.actor == REPORTER and patrol.unit == UNIT
        assert patrol.findings == "巡查路线：一组王家湾—二组水库\n二组水库边有新开挖痕迹"
        assert patrol.started_at.isoformat() == "2026-09-18T01:30:00+00:00"
        assert f'data-patrol="{patrol.id}"' in shown.text
        hashes = {hashlib.sha256(c).hexdigest() for c in (RED, GREEN)}
        assert {p.sha256 for p in app.photos.of_patrol(patrol.id)} == hashes
        assert stored(app) == sorted(app.photos.folder / h[:2] / h[2:] for h in hashes)
        for sha in hashes:
            assert f'src="/ui/photos/{sha}"' in shown.text and sha[:12] in shown.text
            got = member.get(f"/ui/photos/{sha}")
            assert got.status_code == 200 and got.headers["content-type"] == "image/png"
            assert hashlib.sha256(got.content).hexdigest() == sha
    with signed_in(site, LEADER) as leader:  # 新华村's leader sees the town's villages
        status = leader.get("/ui/patrols").text
        village = re.search(r'<li data-unit="ddk-bq-xh"[^>]*>(.*?)</li>', status, re.S)
        assert village is not None and "1/1" in village.group(1) and "已完成" in village.group(1)
        other = re.search(r'<li data-unit="ddk-bq-sl"[^>]*>(.*?)</li>', status, re.S)
        assert other is not None and "0/1" in other.group(1) and "还差 1 次" in other.group(1)
        assert patrol.id in status


@pytest.mark.parametrize(
    ("changes", "files", "field", "message"),
    [
        ({}, [("notes.jpg", b"just some text, not a photo")], "photos", "“notes.jpg”不是照片"),
        ({}, [("ok.png", RED), ("big.jpg", b"\xff\xd8\xff" + bytes(MAX_BYTES))], "photos", "超过"),
        ({"unit": OTHER_UNIT}, [("ok.png", RED)], "unit", "您不能为这个网格单元记录巡查"),
        ({"unit": ""}, [("ok.png", RED)], "unit", "请选择网格单元"),
        ({"started": "2026-09-18T11:00"}, [], "started", "巡查时间不能晚于现在"),
        ({"started": "昨天"}, [], "started", "请填写日期和时间"),
    ],
    ids=["text-as-jpg", "too-large", "out-of-scope", "no-unit", "future", "not-a-time"],
)
def test_a_refused_form_keeps_what_was_typed_and_writes_nothing(
    app: App,
    site: str,
    changes: dict[str, str],
    files: list[tuple[str, bytes]],
    field: str,
    message: str,
) -> None:
    with signed_in(site, REPORTER) as member:
        before = written(app)
        typed = form(**changes)
        refused = member.post(
            "/ui/patrols", data={"csrf": csrf_of(member), **typed}, files=photos(*files)
        )
        assert refused.status_code == 422
        error = re.search(rf'id="patrol-{field}-error"[^>]*>([^<]*)<', refused.text)
        assert error is not None and message in error.group(1), refused.text
        assert refused.text.count('class="field-error"') == 1
        assert f'value="{typed["started"]}"' in refused.text
        assert f'value="{typed["route_note"]}"' in refused.text
        assert f">{typed['findings']}</textarea>" in refused.text
        if files:  # a file input cannot be filled in again: the page says to choose again
            assert f"刚才选择的 {len(files)} 张照片没有保存" in refused.text
        assert written(app) == before == (0, 0)


def test_a_form_without_its_csrf_token_is_refused_and_writes_nothing(app: App, site: str) -> None:
    with signed_in(site, REPORTER) as member:
        for token in ({}, {"csrf": "forged"}):
            refused = member.post(
                "/ui/patrols", data={**token, **form()}, files=photos(("a.png", RED))
            )
            assert refused.status_code == 403
            assert "安全校验未通过" in refused.text
    assert written(app) == (0, 0)


def test_a_body_over_the_forms_limit_is_a_413_page(app: App, site: str) -> None:
    limit = form_limit(MAX_BYTES)
    with signed_in(site, REPORTER) as member:
        huge = [("photos", (f"{i}.png", RED + bytes(MAX_BYTES), "image/png")) for i in range(200)]
        refused = member.post("/ui/patrols", data={"csrf": csrf_of(member), **form()}, files=huge)
        assert refused.status_code == 413
        assert refused.headers["content-type"].startswith("text/html")
        assert "提交的内容过大" in refused.text
        assert sum(len(f[1][1]) for f in huge) > limit
    assert written(app) == (0, 0)


def test_signed_out_the_page_the_form_and_the_photos_lead_to_sign_in(app: App, site: str) -> None:
    with httpx.Client(base_url=site, timeout=30) as anonymous:
        for answer in (
            anonymous.get("/ui/patrols"),
            anonymous.post("/ui/patrols", data=form(), files=photos(("a.png", RED))),
            anonymous.get(f"/ui/photos/{hashlib.sha256(RED).hexdigest()}"),
        ):
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/ui/login?next=/ui/")
    assert written(app) == (0, 0)


def test_a_script_in_the_findings_is_shown_as_text(app: App, site: str) -> None:
    script = "<script>alert(1)</script>"
    with signed_in(site, REPORTER) as member:
        sent = member.post(
            "/ui/patrols",
            data={"csrf": csrf_of(member), **form(findings=script, route_note=script)},
        )
        assert sent.status_code == 303
        shown = member.get("/ui/patrols").text
        assert script not in shown
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown


def test_another_villages_person_sees_neither_the_patrol_nor_its_photo(app: App, site: str) -> None:
    with signed_in(site, REPORTER) as member:
        sent = member.post(
            "/ui/patrols", data={"csrf": csrf_of(member), **form()}, files=photos(("a.png", RED))
        )
        assert sent.status_code == 303
    (patrol,) = app.patrols.ledger.list()
    sha = hashlib.sha256(RED).hexdigest()
    with signed_in(site, OTHER_MEMBER) as other:
        theirs = other.get(f"/ui/patrols?recorded={patrol.id}")  # no notice of it either
        assert theirs.status_code == 200 and "巡查已记录" not in theirs.text
        assert patrol.id not in theirs.text and sha not in theirs.text
        assert f'<option value="{OTHER_UNIT}" selected>' in theirs.text
        refused = other.get(f"/ui/photos/{sha}")
        assert refused.status_code == 404
        assert refused.headers["content-type"].startswith("text/html")
        assert other.get("/ui/photos/not-a-hash").status_code == 404


def test_a_photo_that_cannot_be_stored_leaves_no_patrol_behind(app: App, site: str) -> None:
    """The photos' folder is a file, so no photo can be written: the patrol is not
    recorded either (the patrol and its photos are one record, or none)."""
    folder = app.photos.folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("not a folder", encoding="utf-8")
    with signed_in(site, REPORTER) as member:
        failed = member.post(
            "/ui/patrols",
            data={"csrf": csrf_of(member), **form()},
            files=photos(("IMG_0001.jpg", RED)),
        )
        assert failed.status_code == 500
        assert "Traceback" not in failed.text
    assert app.patrols.ledger.list() == []
