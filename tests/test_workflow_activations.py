"""Which version new cases get: the newest activation, so loading old content reverts to it."""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from engine.cases.catalog import Catalog
from engine.cases.service import CaseService
from engine.clock import FixedClock
from engine.grid.registry import load_grid
from engine.store.tables import workflow_activations, workflow_versions
from notifications.templates import TemplateStore
from tests.support.databases import Database
from tests.support.farmland import CASE_DATA, GRID_FILE, REPORTER, START, UNIT, WORKFLOW_FILE
from tests.support.paths import GENGBAO, ROOT

V1 = WORKFLOW_FILE.read_text(encoding="utf-8")
V2 = V1.replace("title: 违法占用耕地案件处置", "title: 违法占用耕地案件处置（修订）", 1)


@pytest.fixture
def service(engine: Engine, clock: FixedClock) -> CaseService:
    load_grid(engine, GRID_FILE)
    return CaseService(engine, Catalog(engine, clock, TemplateStore().check), clock)


def files(tmp_path: Path) -> tuple[Path, Path]:
    v1, v2 = tmp_path / "v1.yaml", tmp_path / "v2.yaml"
    v1.write_text(V1, encoding="utf-8")
    v2.write_text(V2, encoding="utf-8")
    return v1, v2


def open_case(service: CaseService) -> int:
    return service.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA).version


def counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(sa.select(sa.func.count()).select_from(workflow_versions)).scalar_one(),
            conn.execute(sa.select(sa.func.count()).select_from(workflow_activations)).scalar_one(),
        )


def test_loading_v1_again_after_v2_makes_v1_current(
    service: CaseService, clock: FixedClock, tmp_path: Path
) -> None:
    v1, v2 = files(tmp_path)
    catalog = service.catalog
    assert catalog.register_file(v1).outcome == "new version"
    clock.advance(timedelta(hours=1))
    second = catalog.register_file(v2)
    assert (second.version, second.created, second.was) == (2, True, 1)
    on_v2 = service.create_case("farmland_violation", UNIT, REPORTER, CASE_DATA).id
    clock.advance(timedelta(hours=1))
    again = catalog.register_file(v1)
    assert (again.version, again.created, again.activated, again.was) == (1, False, True, 2)
    assert again.outcome == "re-activated; was v2"
    assert counts(service.engine) == (2, 3)
    assert open_case(service) == 1
    # the case opened on v2 stays pinned to v2
    moved = service.submit_event(on_v2, "stop", REPORTER, {"stop_note": "已制止"})
    assert moved.version == 2 and service.get_case(on_v2).version == 2
    shown = {(v.version, v.current, v.activated_at) for v in catalog.versions()}
    assert shown == {
        (1, True, (START, START + timedelta(hours=2))),
        (2, False, (START + timedelta(hours=1),)),
    }


def test_loading_the_current_content_again_is_unchanged_and_writes_nothing(
    service: CaseService, tmp_path: Path
) -> None:
    v1, v2 = files(tmp_path)
    service.catalog.register_file(v1)
    service.catalog.register_file(v2)
    service.catalog.register_file(v1)
    before = counts(service.engine)
    same = service.catalog.register_file(v1)
    assert (same.created, same.activated, same.outcome) == (False, False, "unchanged")
    assert counts(service.engine) == before
    assert open_case(service) == 1


def test_a_folder_sync_reverts_only_when_the_file_changed(
    service: CaseService, tmp_path: Path
) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir()
    v1, _ = files(tmp_path)
    in_folder = folder / "farmland_violation.yaml"
    in_folder.write_text(V2, encoding="utf-8")
    catalog = service.catalog
    catalog.register_file(v1)
    assert [r.outcome for r in catalog.sync_folder(folder)] == ["new version"]
    # an explicit load of v1 wins over the unchanged folder file
    assert catalog.register_file(v1).outcome == "re-activated; was v2"
    assert [r.outcome for r in catalog.sync_folder(folder)] == ["unchanged; v1 stays current"]
    assert open_case(service) == 1
    # an edit of the folder file activates its content; reverting the edit re-activates v2
    in_folder.write_text(V2.replace("（修订）", "（三稿）"), encoding="utf-8")
    assert [r.outcome for r in catalog.sync_folder(folder)] == ["new version"]
    assert open_case(service) == 3
    in_folder.write_text(V2, encoding="utf-8")
    assert [r.outcome for r in catalog.sync_folder(folder)] == ["re-activated; was v3"]
    assert open_case(service) == 2


def test_workflow_load_and_list_say_what_is_current(database: Database, tmp_path: Path) -> None:
    v1, v2 = files(tmp_path)
    env = {**os.environ, "GENGBAO_DATABASE_URL": database.url}

    def gengbao(*args: str) -> str:
        done = subprocess.run(
            [GENGBAO, *args], capture_output=True, text=True, env=env, cwd=ROOT, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    gengbao("--now", "2026-12-01T10:00:00+08:00", "workflow", "load", str(v1))
    gengbao("--now", "2026-12-01T11:00:00+08:00", "workflow", "load", str(v2))
    out = gengbao("--now", "2026-12-01T12:00:00+08:00", "workflow", "load", str(v1))
    assert out == f"{v1}: farmland_violation: v1 (re-activated; was v2)\n"
    out = gengbao("--now", "2026-12-01T13:00:00+08:00", "workflow", "load", str(v1))
    assert out == f"{v1}: farmland_violation: v1 (unchanged)\n"
    listed = gengbao("workflow", "list", "farmland_violation").splitlines()
    assert listed[0].startswith("* farmland_violation v1 ")
    assert listed[0].endswith("activated 2026-12-01 10:00, 2026-12-01 12:00  (current)")
    assert listed[1].startswith("  farmland_violation v2 ")
    assert listed[1].endswith("activated 2026-12-01 11:00")
