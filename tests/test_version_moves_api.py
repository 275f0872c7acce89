"""``POST /workflows/{name}/migrations`` on a real ``gengbao serve``: who may, the dry
run, the refusal that moves nothing, the move."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.api_server import ApiServer, assert_error
from tests.support.versions import RENAMED, V1

OFFICE = "p-ddk-office1"  # district.office: an administrator by default
MEMBER = "p-bq-xh-1-member"
PATH = "/workflows/hedge_check/migrations"


@pytest.fixture(scope="module")
def tokens(server: ApiServer) -> dict[str, str]:
    return server.tokens([OFFICE, MEMBER], "migrations")


def load(server: ApiServer, folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    server.cli("workflow", "load", str(path))


def test_an_administrator_plans_is_refused_then_moves(
    server: ApiServer, tokens: dict[str, str], tmp_path: Path
) -> None:
    load(server, tmp_path, "hedge_v1.yaml", V1)
    with server.client(tokens[MEMBER]) as member, server.client(tokens[OFFICE]) as office:
        made = member.post(
            "/cases",
            json={"workflow": "hedge_check", "unit": "ddk-bq-xh-1", "data": {"plot": "7 号"}},
        )
        assert made.status_code == 201, made.text
        case_id = made.json()["id"]
        load(server, tmp_path, "hedge_v2.yaml", RENAMED)

        assert_error(member.post(PATH, json={"to_version": 2}), 403, "not_permitted")
        assert_error(office.post(PATH, json={"to_version": 9}), 404, "unknown_workflow")
        bad = office.post(PATH, json={"to_version": 2, "replay_days": 3})
        assert_error(bad, 422, "invalid_request")

        refused = office.post(PATH, json={"to_version": 2})
        assert_error(refused, 409, "migration_refused")
        problems = refused.json()["details"]["problems"]
        assert [(p["case"], p["state"]) for p in problems] == [(case_id, "checking")]
        assert member.get(f"/cases/{case_id}").json()["version"] == 1

        body = {"to_version": 2, "map": {"checking": "inspecting"}, "dry_run": True}
        plan = office.post(PATH, json={**body, "replay_days": 30})
        assert plan.status_code == 200, plan.text
        answer = plan.json()
        assert answer["ok"] and answer["moved"] == 0 and answer["replay"]["cases"] == 0
        assert [(c["case"], c["new_state"]) for c in answer["cases"]] == [(case_id, "inspecting")]
        assert member.get(f"/cases/{case_id}").json()["version"] == 1

        done = office.post(PATH, json={**body, "dry_run": False})
        assert done.status_code == 200, done.text
        assert done.json()["moved"] == 1
        moved = member.get(f"/cases/{case_id}").json()
        assert (moved["version"], moved["state"]) == (2, "inspecting")
        again = office.post(PATH, json={**body, "dry_run": False})
        assert again.json()["moved"] == 0  # nothing left to move
