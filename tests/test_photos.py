"""Patrol photos (engine/patrols/photos.py): content-addressed, checked, tamper-evident.

A 新华村 member records a patrol and opens a case from its finding; photos of the
patrol go to ``data_dir/photos/ab/cdef…`` and into the case's history.  The limit
is 1,000 bytes here, so an oversized photo is small to make.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.app import App
from engine.errors import InvalidPhoto, PhotoTooLarge, UnknownPatrol, UnknownPhoto
from engine.errors import UnsupportedPhotoType as UnsupportedType
from engine.patrols.photos import media_type_of
from tests.support.databases import Database
from tests.support.farmland import CASE_DATA
from tests.support.paths import GENGBAO, ROOT
from tests.support.processes import gengbao_env

VILLAGE = "ddk-bq-xh"  # 八桥镇 / 新华村
MEMBER = "p-bq-xh-member1"
TOWN = "p-bq-office"  # 八桥镇: sees 新华村
OTHER_TOWN = "p-js-office"  # 建胜镇
MAX_BYTES = 1000
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(200))
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 60


@pytest.fixture
def app_settings(tmp_path: Path) -> dict[str, Any]:
    return {"data_dir": tmp_path / "var", "photos": {"max_bytes": MAX_BYTES}}


@pytest.fixture
def folder(app: App) -> Path:
    return app.photos.folder


def stored_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def patrol(app: App) -> str:
    return app.patrols.ledger.record(VILLAGE, MEMBER, findings="二组有新开挖痕迹").id


@pytest.mark.parametrize(
    ("head", "media_type"),
    [
        (JPEG, "image/jpeg"),
        (PNG, "image/png"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00", "image/heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00", "image/heif"),
        (b"GIF89a\x01\x00\x01\x00", None),
        (b"%PDF-1.7\n", None),
        (b"\x00\x00\x00\x18ftypisom", None),  # an MP4 video
    ],
)
def test_the_type_is_read_from_the_first_bytes(head: bytes, media_type: str | None) -> None:
    assert media_type_of(head[:16]) == media_type


def test_a_photo_is_stored_by_its_hash_and_noted_in_the_patrols_case(
    app: App, folder: Path
) -> None:
    pid = patrol(app)
    case = app.patrols.ledger.open_case(pid, "farmland_violation", MEMBER, CASE_DATA)
    photo = app.photos.add(pid, JPEG, MEMBER)
    digest = hashlib.sha256(JPEG).hexdigest()
    assert (photo.sha256, photo.media_type, photo.bytes) == (digest, "image/jpeg", len(JPEG))
    assert photo.cases == (case.id,) and photo.new
    path = folder / digest[:2] / digest[2:]
    assert stored_files(folder) == [path] and path.read_bytes() == JPEG
    last = app.cases.history(case.id)[-1]
    assert (last.trigger, last.actor) == ("photo", MEMBER)
    assert last.payload == {
        "patrol": pid,
        "sha256": digest,
        "bytes": len(JPEG),
        "media_type": "image/jpeg",
    }
    assert app.cases.verify(case.id).ok  # the note is a link of the hash chain
    assert [p.sha256 for p in app.photos.of_patrol(pid, viewer=TOWN)] == [digest]


def test_the_same_bytes_are_stored_once(app: App, folder: Path) -> None:
    first, second = patrol(app), patrol(app)
    case = app.patrols.ledger.open_case(first, "farmland_violation", MEMBER, CASE_DATA)
    assert app.photos.add(first, JPEG, MEMBER).new
    again = app.photos.add(first, JPEG, MEMBER)
    assert not again.new and again.cases == ()
    assert app.photos.add(second, JPEG, MEMBER).new  # another patrol: recorded, not stored
    assert len(stored_files(folder)) == 1
    assert len(app.photos.of_patrol(first)) == 1 and len(app.photos.of_patrol(second)) == 1
    notes = [e for e in app.cases.history(case.id) if e.trigger == "photo"]
    assert len(notes) == 1
    assert app.photos.verify() == (1, [])


@pytest.mark.parametrize(
    ("content", "error", "code"),
    [
        (b"GIF89a" + b"\x00" * 50, UnsupportedType, "unsupported_photo_type"),
        (b"\xff\xd8\xff" + b"\x00" * MAX_BYTES, PhotoTooLarge, "photo_too_large"),
        (b"", InvalidPhoto, "invalid_photo"),
    ],
    ids=["gif", "oversize", "empty"],
)
def test_a_refused_photo_writes_nothing(
    app: App, folder: Path, content: bytes, error: type[InvalidPhoto], code: str
) -> None:
    pid = patrol(app)
    case = app.patrols.ledger.open_case(pid, "farmland_violation", MEMBER, CASE_DATA)
    with pytest.raises(error) as refused:
        app.photos.add(pid, content, MEMBER)
    assert refused.value.code == code and "nothing was stored" in refused.value.message
    assert stored_files(folder) == []
    assert app.photos.of_patrol(pid) == []
    assert [e.trigger for e in app.cases.history(case.id)] == ["create"]


def test_a_viewer_of_another_town_sees_no_photo_and_cannot_add_one(app: App, folder: Path) -> None:
    pid = patrol(app)
    digest = app.photos.add(pid, PNG, MEMBER).sha256
    path, media_type = app.photos.open(digest, viewer=TOWN)
    assert path.read_bytes() == PNG and media_type == "image/png"
    with pytest.raises(UnknownPhoto):
        app.photos.open(digest, viewer=OTHER_TOWN)
    with pytest.raises(UnknownPatrol):
        app.photos.of_patrol(pid, viewer=OTHER_TOWN)
    with pytest.raises(UnknownPatrol):
        app.photos.add(pid, JPEG, OTHER_TOWN)
    assert len(stored_files(folder)) == 1  # the refused JPEG was not stored
    with pytest.raises(UnknownPhoto):
        app.photos.open("../" + digest[3:], viewer=TOWN)  # not a hash: never a path


def test_verify_names_an_altered_and_a_missing_file(app: App, folder: Path) -> None:
    pid = patrol(app)
    jpeg, png = app.photos.add(pid, JPEG, MEMBER), app.photos.add(pid, PNG, MEMBER)
    assert app.photos.verify() == (2, [])
    app.photos.path_of(jpeg.sha256).write_bytes(JPEG[:-1] + b"\x00")  # one byte changed
    app.photos.path_of(png.sha256).unlink()
    checked, problems = app.photos.verify()
    assert checked == 2
    found = {p.sha256: p for p in problems}
    assert found[jpeg.sha256].problem == "altered"
    assert found[jpeg.sha256].actual == hashlib.sha256(JPEG[:-1] + b"\x00").hexdigest()
    assert found[png.sha256].problem == "missing"
    with pytest.raises(UnknownPhoto):  # a missing file is not served
        app.photos.open(png.sha256, viewer=TOWN)
    app.photos.add(pid, JPEG, MEMBER)  # uploading the evidence again repairs the file
    assert {p.sha256 for p in app.photos.verify()[1]} == {png.sha256}


def test_the_cli_adds_a_photo_and_verify_exits_1_on_a_tampered_file(
    app: App, database: Database, tmp_path: Path
) -> None:
    pid = patrol(app)
    settings = tmp_path / "gengbao.yaml"
    data_dir = tmp_path / "cli-var"
    settings.write_text(yaml.safe_dump({"data_dir": str(data_dir)}), encoding="utf-8")
    photo_file = tmp_path / "IMG_0001.jpg"
    photo_file.write_bytes(JPEG)

    def gengbao(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [GENGBAO, "--config", str(settings), *args],
            capture_output=True,
            text=True,
            env=gengbao_env(database.url),
            cwd=ROOT,
            check=False,
        )

    added = gengbao("patrol", "photo", "add", pid, str(photo_file), "--actor", MEMBER, "--json")
    assert added.returncode == 0, added.stderr
    digest = json.loads(added.stdout)["sha256"]
    assert (data_dir / "photos" / digest[:2] / digest[2:]).read_bytes() == JPEG
    ok = gengbao("patrol", "photos", "verify")
    assert ok.returncode == 0 and "1 photo(s) checked, 0 problem(s)" in ok.stdout
    (data_dir / "photos" / digest[:2] / digest[2:]).write_bytes(PNG)
    bad = gengbao("patrol", "photos", "verify")
    assert bad.returncode == 1 and f"{digest}  altered" in bad.stdout
    gif = tmp_path / "a.gif"
    gif.write_bytes(b"GIF89a" + b"\x00" * 20)
    refused = gengbao("patrol", "photo", "add", pid, str(gif), "--actor", MEMBER)
    assert refused.returncode == 1 and "photo refused" in refused.stderr
    assert "Traceback" not in refused.stderr
