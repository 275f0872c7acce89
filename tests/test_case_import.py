"""Bulk case import: ``gengbao case import`` and ``POST /cases/batch``, on both backends.

An imported case is the case ``create_case`` opens (same rows: case, history,
state entry, timers, outbox); a bad line anywhere writes nothing and every
bad line is named with its line and field; ``--skip-invalid`` writes the good
ones; keys replay; ids are one contiguous block that never collides with a
concurrent ``create_case``.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from engine.app import App
from engine.cases.batch import NewCase
from engine.cases.history import canonical_number
from engine.cases.imports import parse
from engine.clock import FixedClock
from engine.store.tables import cases, history, idempotency, notifications, state_entries, timers
from tests.support.api_server import ApiServer, assert_error
from tests.support.databases import Database
from tests.support.farmland import CASE_DATA, GRID_FILE, REPORTER, UNIT, farmland_app
from tests.support.paths import GENGBAO, ROOT
from tests.test_cases_cli import run

WORKFLOW = "farmland_violation"
ELSEWHERE = "p-js-bh-1-member"  # a group member in another town: may not open a case on UNIT
NOW = "2026-09-18T10:00:00+08:00"


def line(unit: str = UNIT, key: str | None = None, **data: Any) -> str:
    item: dict[str, Any] = {"unit": unit, "data": {**CASE_DATA, **data}}
    if key is not None:
        item["key"] = key
    return json.dumps(item, ensure_ascii=False)


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rows(engine: sa.Engine, table: sa.Table, case_id: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        found = conn.execute(sa.select(table).where(table.c.case_id == case_id)).mappings()
        return [dict(r) for r in found]


def case_row(engine: sa.Engine, case_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(cases).where(cases.c.id == case_id)).mappings().one())


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def import_text(app: App, text: str, source: str, **kw: Any) -> Any:
    fields = app.catalog.compiled_latest(WORKFLOW).workflow.fields
    parsed = parse(text, source, fields)
    return app.cases.create_cases(WORKFLOW, parsed.items, REPORTER, rejected=parsed.problems, **kw)


# -- the rows --------------------------------------------------------------------


def test_an_imported_case_has_the_rows_create_case_writes(app: App) -> None:
    made = app.cases.create_case(WORKFLOW, UNIT, REPORTER, CASE_DATA)
    result = import_text(app, line() + "\n", "one.jsonl")
    assert not result.refused and result.written == 1
    imported = result.items[0].id
    assert imported is not None and imported != made.id
    engine = app.engine

    def without(row: dict[str, Any], *names: str) -> dict[str, Any]:
        return {k: v for k, v in row.items() if k not in names}

    a, b = case_row(engine, made.id), case_row(engine, imported)
    assert a["deadline_at"] is not None
    assert without(a, "id", "head_hash") == without(b, "id", "head_hash")
    for table in (history, state_entries):
        ours = [without(r, "case_id", "hash") for r in rows(engine, table, imported)]
        theirs = [without(r, "case_id", "hash") for r in rows(engine, table, made.id)]
        assert ours == theirs and ours
    ours_t = [without(r, "id", "case_id") for r in rows(engine, timers, imported)]
    theirs_t = [without(r, "id", "case_id") for r in rows(engine, timers, made.id)]
    assert sorted(ours_t, key=repr) == sorted(theirs_t, key=repr)
    assert {t["kind"] for t in ours_t} == {"deadline", "reminder", "escalation"}
    assert rows(engine, notifications, imported) == rows(engine, notifications, made.id) == []
    assert app.cases.verify(imported).ok
    shown = app.timers.describe(imported)
    assert shown["timers"] == app.timers.describe(made.id)["timers"]
    assert app.cases.history(imported)[0].trigger == "create"


def test_a_csv_with_chinese_headers_opens_the_same_cases_as_json_lines(
    database: Database, tmp_path: Path
) -> None:
    run(database, "grid", "load", str(GRID_FILE))
    jsonl = write(
        tmp_path / "cases.jsonl",
        line(key_area=True, area_m2=12.5),
        line(land_type="一般耕地", photos=["a.jpg", "b.jpg"], location=[106.5, 29.5]),
    )
    csv_file = tmp_path / "cases.csv"
    csv_file.write_text(
        "\ufeff单位,地址,地类,占地面积（平方米）,线索来源,key_area,现场照片,坐标\r\n"
        "ddk-bq-xh-1,新华村一组 12 号旁,永久基本农田,12.5,村级巡查,是,,\r\n"
        'ddk-bq-xh-1,新华村一组 12 号旁,一般耕地,4000,村级巡查,,a.jpg;b.jpg,"106.5,29.5"\r\n',
        encoding="utf-8",
    )
    common = ("--now", NOW, "case", "import", WORKFLOW)
    first = json.loads(run(database, *common, str(jsonl), "--actor", REPORTER, "--json").stdout)
    second = json.loads(run(database, *common, str(csv_file), "--actor", REPORTER, "--json").stdout)
    assert [i["line"] for i in second["items"]] == [2, 3]  # the header is line 1
    engine = database.new_engine()
    for a, b in zip(first["items"], second["items"], strict=True):
        ra, rb = case_row(engine, a["id"]), case_row(engine, b["id"])
        assert ra["data"] == rb["data"]
        assert ra["deadline_at"] == rb["deadline_at"]
    assert case_row(engine, second["items"][0]["id"])["data"]["key_area"] is True
    assert case_row(engine, second["items"][1]["id"])["data"]["photos"] == ["a.jpg", "b.jpg"]
    for item in second["items"]:
        assert json.loads(run(database, "case", "verify", item["id"], "--json").stdout)["ok"]


# -- refusals ----------------------------------------------------------------------


def test_one_bad_line_anywhere_writes_nothing_and_every_bad_line_is_named(
    database: Database, tmp_path: Path
) -> None:
    run(database, "grid", "load", str(GRID_FILE))
    path = write(
        tmp_path / "findings.jsonl",
        line(),
        line(area_m2="abc"),
        "",
        line(unit="nowhere"),
        line(land_type="菜地", source=None),
        '{"unit": "ddk-bq-xh-1", "data": {',
        line(),
    )
    done = run(database, "case", "import", WORKFLOW, str(path), "--actor", REPORTER, check=False)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[:5] == [
        f"{path}:2: data.area_m2: expected a number, got 'abc'",
        f"{path}:4: unit: unknown grid unit 'nowhere'",
        f"{path}:5: data.land_type: '菜地' is not one of: 永久基本农田, 一般耕地, 其他",
        f"{path}:5: data.source: is required",
        f"{path}:6: not valid JSON: Expecting property name enclosed in double quotes "
        "at character 34",
    ]
    assert lines[5].startswith(f"gengbao: error: {path}: nothing imported: 5 problem(s)")
    engine = database.new_engine()
    for table in (cases, history, state_entries, timers, notifications, idempotency):
        assert count(engine, table) == 0, table.name


def test_skip_invalid_writes_the_good_lines_and_reports_the_rest(
    database: Database, tmp_path: Path
) -> None:
    run(database, "grid", "load", str(GRID_FILE))
    path = write(tmp_path / "mixed.jsonl", line(), line(area_m2=-1), line())
    done = run(
        database, "--now", NOW, "case", "import", WORKFLOW, str(path),
        "--actor", REPORTER, "--skip-invalid", check=False,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert done.stderr.splitlines() == [f"{path}:2: data.area_m2: -1 is below the minimum 0"]
    assert done.stdout.splitlines() == [
        f"{path}: 2 case(s) imported (C20260918-0001 … C20260918-0002), 0 replayed, "
        "1 line(s) skipped"
    ]
    engine = database.new_engine()
    assert count(engine, cases) == 2 and count(engine, history) == 2


def test_a_line_the_actor_may_not_open_is_refused_on_its_own(app: App) -> None:
    fields = app.catalog.compiled_latest(WORKFLOW).workflow.fields
    parsed = parse("\n".join([line(), line(unit="ddk-js-bh-1"), line()]), "p.jsonl", fields)
    result = app.cases.create_cases(WORKFLOW, parsed.items, ELSEWHERE, skip_invalid=True)
    assert [i.ok for i in result.items] == [False, True, False]
    assert result.items[0].problems[0].field == "unit"
    assert result.items[0].problems[0].code == "not_permitted"
    assert "may not open a farmland_violation case" in result.items[0].problems[0].message
    assert result.written == 1 and count(app.engine, cases) == 1


def test_an_unreadable_file_or_an_unknown_column_is_refused_whole(
    database: Database, tmp_path: Path
) -> None:
    run(database, "grid", "load", str(GRID_FILE))
    bad = tmp_path / "bad.csv"
    bad.write_text("unit,地址,面积亩\nddk-bq-xh-1,x,3\n", encoding="utf-8")
    done = run(database, "case", "import", WORKFLOW, str(bad), "--actor", REPORTER, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"gengbao: error: {bad}:1: column '面积亩' is not a field of the workflow; known: unit"
    )
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(line().encode() + b"\n" + '{"unit": "é"}'.encode("latin-1") + b"\n")
    done = run(database, "case", "import", WORKFLOW, str(latin), "--actor", REPORTER, check=False)
    assert done.returncode == 1 and f"{latin}:2: not UTF-8" in done.stderr
    missing = run(
        database, "case", "import", WORKFLOW, str(tmp_path / "none.jsonl"),
        "--actor", REPORTER, check=False,
    )  # fmt: skip
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    assert "Traceback" not in done.stderr + missing.stderr
    assert count(database.new_engine(), cases) == 0


# -- idempotency -------------------------------------------------------------------


def test_a_second_import_of_the_same_file_replays_every_keyed_line(
    database: Database, tmp_path: Path
) -> None:
    run(database, "grid", "load", str(GRID_FILE))
    path = write(tmp_path / "k.jsonl", line(key="a"), line(key="b", area_m2=1), line(key="a"))
    args = ("--now", NOW, "case", "import", WORKFLOW, str(path), "--actor", REPORTER, "--json")
    first = json.loads(run(database, *args).stdout)
    again = json.loads(run(database, *args).stdout)
    assert first["written"] == 2 and first["replayed"] == 1  # line 3 repeats line 1's key
    assert [i["id"] for i in again["items"]] == [i["id"] for i in first["items"]]
    assert first["items"][0]["id"] == first["items"][2]["id"]
    assert again["written"] == 0 and again["replayed"] == 3
    assert count(database.new_engine(), cases) == 2
    changed = write(tmp_path / "k2.jsonl", line(key="a", area_m2=2), line(key="c"))
    done = run(database, "case", "import", WORKFLOW, str(changed), "--actor", REPORTER, check=False)
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        f"{changed}:1: key: idempotency key 'a' was already used for a different request"
    )
    assert count(database.new_engine(), cases) == 2


def test_a_key_of_post_cases_replays_in_an_import(app: App) -> None:
    made = app.cases.create_case(WORKFLOW, UNIT, REPORTER, CASE_DATA, key="app-1")
    item = NewCase(line=1, unit=UNIT, data=CASE_DATA, key="app-1")
    result = app.cases.create_cases(WORKFLOW, [item], REPORTER)
    assert result.items[0].id == made.id and result.items[0].replayed
    again = app.cases.create_case(WORKFLOW, UNIT, REPORTER, CASE_DATA, key="app-2")
    imported = app.cases.create_cases(
        WORKFLOW, [NewCase(line=1, unit=UNIT, data=CASE_DATA)], REPORTER
    )
    assert imported.items[0].id != again.id
    keyed = app.cases.create_cases(
        WORKFLOW, [NewCase(line=1, unit=UNIT, data=CASE_DATA, key="bulk-1")], REPORTER
    )
    replay = app.cases.create_case(WORKFLOW, UNIT, REPORTER, CASE_DATA, key="bulk-1")
    assert replay.id == keyed.items[0].id
    assert replay.extra == {
        "deadline_at": case_row(app.engine, replay.id)["deadline_at"].isoformat()
    }


# -- ids -----------------------------------------------------------------------------


def test_ids_are_one_contiguous_block_beside_concurrent_creates(
    database: Database, clock: FixedClock
) -> None:
    importer = farmland_app(database.url, clock)
    other = App(importer.settings, clock)
    try:
        importer.cases.create_case(WORKFLOW, UNIT, REPORTER, CASE_DATA)
        items = [NewCase(line=n, unit=UNIT, data=CASE_DATA) for n in range(1, 1501)]
        singles: list[str] = []
        errors: list[BaseException] = []

        def create_some() -> None:
            try:
                for _ in range(15):
                    singles.append(other.cases.create_case(WORKFLOW, UNIT, REPORTER, CASE_DATA).id)
            except BaseException as exc:  # reported below
                errors.append(exc)

        thread = threading.Thread(target=create_some)
        thread.start()
        result = importer.cases.create_cases(WORKFLOW, items, REPORTER)
        thread.join()
        assert errors == []
        numbers = [int(str(i.id).rsplit("-", 1)[1]) for i in result.items]
        assert numbers == list(range(numbers[0], numbers[0] + 1500))
        every = [i.id for i in result.items] + singles
        assert len(set(every)) == 1515
        single_numbers = {int(s.rsplit("-", 1)[1]) for s in singles}
        assert not single_numbers & set(numbers)
        assert max(single_numbers | set(numbers)) == 1516  # nothing drawn and lost
        assert count(importer.engine, cases) == 1516
    finally:
        other.close()
        importer.close()


@pytest.mark.parametrize("value", [0, 1, -1, 7, 10, 4000, -1200, 10**16, 12345678901234567890100])
def test_whole_numbers_hash_as_their_exact_decimal_value(value: int) -> None:
    """The fast path for integers spells what the Decimal path spells."""
    sign, digits, exponent = Decimal(value).as_tuple()
    assert isinstance(exponent, int)
    kept = list(digits)
    while len(kept) > 1 and kept[-1] == 0:
        kept.pop()
        exponent += 1
    expected = "0" if kept == [0] else f"{'-' if sign else ''}{''.join(map(str, kept))}e{exponent}"
    assert canonical_number(value) == expected


# -- over HTTP -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokens(server: ApiServer) -> dict[str, str]:
    return server.tokens([REPORTER, ELSEWHERE])


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


def item(unit: str = UNIT, key: str | None = None, **data: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"unit": unit, "data": {**CASE_DATA, **data}}
    if key is not None:
        body["key"] = key
    return body


def test_a_batch_over_http_answers_each_item_in_order(
    as_actor: Callable[[str], httpx.Client],
) -> None:
    client = as_actor(REPORTER)
    refused = client.post(
        "/cases/batch",
        json={"workflow": WORKFLOW, "items": [item(), item(area_m2="abc"), item(unit="nowhere")]},
    )
    body = assert_error(refused, 422, "import_refused")
    answers = body["details"]["items"]
    assert [a["id"] for a in answers] == [None, None, None]
    assert answers[1]["problems"][0]["field"] == "data.area_m2"
    assert answers[2]["error"] == "unknown_unit"
    before = client.get("/cases", params={"limit": 1000}).json()["items"]
    written = client.post(
        "/cases/batch",
        json={
            "workflow": WORKFLOW,
            "items": [item(key="h-1"), item(area_m2="abc"), item()],
            "skip_invalid": True,
        },
    )
    assert written.status_code == 200, written.text
    result = written.json()
    assert (result["written"], result["skipped"], result["refused"]) == (2, 1, False)
    assert [a["line"] for a in result["items"]] == [1, 2, 3]
    assert result["items"][1]["error"] == "invalid_data" and result["items"][1]["id"] is None
    new_ids = [result["items"][0]["id"], result["items"][2]["id"]]
    after = client.get("/cases", params={"limit": 1000}).json()["items"]
    assert len(after) == len(before) + 2
    shown = client.get(f"/cases/{new_ids[0]}").json()
    assert shown["state"] == "discovered" and len(shown["timers"]) == 6
    again = client.post(
        "/cases/batch",
        json={
            "workflow": WORKFLOW,
            "items": [item(key="h-1"), item(key="h-1", area_m2=9)],
            "skip_invalid": True,
        },
    ).json()
    assert again["items"][0] == {"line": 1, "id": new_ids[0], "replayed": True}
    assert again["items"][1]["error"] == "idempotency_mismatch"
    assert again["written"] == 0


def test_a_batch_over_http_checks_permission_per_item_and_caps_its_size(
    as_actor: Callable[[str], httpx.Client],
) -> None:
    client = as_actor(ELSEWHERE)
    answer = client.post(
        "/cases/batch",
        json={
            "workflow": WORKFLOW,
            "items": [item(), item(unit="ddk-js-bh-1")],
            "skip_invalid": True,
        },
    )
    assert answer.status_code == 200, answer.text
    first, second = answer.json()["items"]
    assert first["error"] == "not_permitted" and first["problems"][0]["field"] == "unit"
    assert second["id"] is not None
    too_many = client.post(
        "/cases/batch", json={"workflow": WORKFLOW, "items": [{"unit": UNIT}] * 1001}
    )
    body = assert_error(too_many, 422, "invalid_request")
    assert "items" in body["details"]["fields"] and "1000" in body["message"]
    unknown = client.post("/cases/batch", json={"workflow": "nope", "items": [item()]})
    assert_error(unknown, 404, "unknown_workflow")


def test_stdin_is_read_as_its_content_says_and_a_terminal_sees_progress(
    database: Database, tmp_path: Path
) -> None:
    run(database, "grid", "load", str(GRID_FILE))
    env = {**os.environ, "GENGBAO_DATABASE_URL": database.url}
    piped = subprocess.run(
        [GENGBAO, "case", "import", WORKFLOW, "-", "--actor", REPORTER],
        input="\n".join([line(), line()]), capture_output=True, text=True, env=env, cwd=ROOT,
        check=False,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.startswith("<stdin>: 2 case(s) imported")
    assert piped.stderr == ""  # no progress line when stderr is not a terminal
    path = write(tmp_path / "three.jsonl", line(), line(), line())
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [GENGBAO, "case", "import", WORKFLOW, str(path), "--actor", REPORTER],
            stderr=follower, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT, check=False,
        )  # fmt: skip
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal's other end is closed: all is read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0
    assert "\rimporting: 3/3 (100%)" in shown.decode()
    assert count(database.new_engine(), cases) == 5
