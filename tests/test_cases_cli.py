"""The CLI as a user runs it: every step a new process on the same database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import Database
from tests.support.farmland import CASE_DATA, GRID_FILE, LIFECYCLE, REPORTER, UNIT, WORKFLOW_FILE
from tests.support.paths import GENGBAO, ROOT


def run(db: Database, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GENGBAO_DATABASE_URL": db.url}
    done = subprocess.run(
        [GENGBAO, *args], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def run_json(db: Database, *args: str) -> Any:
    return json.loads(run(db, *args, "--json").stdout)


def test_the_farmland_lifecycle_one_process_per_step(database: Database) -> None:
    run(database, "grid", "load", str(GRID_FILE))
    created = run_json(
        database,
        "--now", "2026-09-18T10:00:00+08:00",
        "case", "create", "farmland_violation",
        "--unit", UNIT, "--actor", REPORTER, "--data", json.dumps(CASE_DATA),
    )  # fmt: skip
    case_id = created["id"]
    assert {k: created[k] for k in ("workflow", "version", "state", "unit")} == {
        "workflow": "farmland_violation",
        "version": 1,
        "state": "discovered",
        "unit": UNIT,
    }
    for hour, (trigger, actor, payload, reached) in enumerate(LIFECYCLE, start=11):
        view = run_json(
            database,
            "--now", f"2026-09-18T{hour}:00:00+08:00",
            "case", "event", case_id, trigger,
            "--actor", actor, "--payload", json.dumps(payload, ensure_ascii=False),
        )  # fmt: skip
        assert view["state"] == reached
    shown = run_json(database, "case", "show", case_id)
    assert shown["state"] == "closed" and shown["open"] is False
    entries = run_json(database, "case", "history", case_id)
    assert [e["trigger"] for e in entries] == ["create"] + [s[0] for s in LIFECYCLE]
    assert entries[1]["at"] == "2026-09-18T03:00:00+00:00"
    assert {"seq", "trigger", "from", "to", "actor", "at"} <= set(entries[0])
    assert run_json(database, "case", "verify", case_id)["ok"] is True
    listed = run_json(database, "case", "list", "--unit", "ddk-bq", "--closed")
    assert [c["id"] for c in listed] == [case_id]
    versions = run_json(database, "workflow", "list")
    assert [(v["workflow"], v["version"], v["open_cases"]) for v in versions] == [
        ("farmland_violation", 1, 0),
        ("satellite_spot", 1, 0),  # the other bundled workflow, synced from the folder
    ]


def test_a_refused_event_exits_1_with_the_reason(database: Database) -> None:
    run(database, "grid", "load", str(GRID_FILE))
    case_id = run_json(
        database, "case", "create", "farmland_violation",
        "--unit", UNIT, "--actor", REPORTER, "--data", json.dumps(CASE_DATA),
    )["id"]  # fmt: skip
    done = run(database, "case", "event", case_id, "accept", "--actor", "p-bq-office", check=False)
    assert done.returncode == 1
    assert (
        "trigger 'accept' is not allowed in state 'discovered'; allowed: stop, stop_fail"
        in done.stderr
    )
    assert "Traceback" not in done.stderr
    bad_json = run(
        database,
        "case",
        "event",
        case_id,
        "stop",
        "--actor",
        REPORTER,
        "--payload",
        "{oops",
        check=False,
    )
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr


def test_revision_flag_and_its_hidden_old_name(database: Database) -> None:
    run(database, "grid", "load", str(GRID_FILE))
    case_id = run_json(
        database, "case", "create", "farmland_violation",
        "--unit", UNIT, "--actor", REPORTER, "--data", json.dumps(CASE_DATA),
    )["id"]  # fmt: skip
    stop = (
        "case",
        "event",
        case_id,
        "stop",
        "--actor",
        REPORTER,
        "--payload",
        '{"stop_note": "x"}',
    )
    stale = run(database, *stop, "--revision", "5", check=False)
    assert stale.returncode == 1
    assert f"case '{case_id}' is at revision 1, not 5" in stale.stderr
    old = run(database, *stop, "--expect-revision", "1", "--json")
    assert json.loads(old.stdout)["revision"] == 2
    assert "--expect-revision is deprecated; use --revision" in old.stderr
    again = run(database, *stop, "--revision", "2", check=False)
    assert again.returncode == 1 and "not allowed in state 'stopped'" in again.stderr
    shown = run(database, "case", "event", "--help").stdout
    assert "--revision N" in shown and "--expect-revision" not in shown


def test_two_processes_race_on_one_case(database: Database) -> None:
    run(database, "grid", "load", str(GRID_FILE))
    env = {**os.environ, "GENGBAO_DATABASE_URL": database.url}
    for _ in range(3):
        case_id = run_json(
            database, "case", "create", "farmland_violation",
            "--unit", UNIT, "--actor", REPORTER, "--data", json.dumps(CASE_DATA),
        )["id"]  # fmt: skip
        procs = [
            subprocess.Popen(
                [
                    GENGBAO,
                    "case",
                    "event",
                    case_id,
                    trigger,
                    "--actor",
                    REPORTER,
                    "--payload",
                    json.dumps({"stop_note": trigger}),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=ROOT,
            )
            for trigger in ("stop", "stop_fail")
        ]
        outcomes = [p.wait(timeout=60) for p in procs]
        for p in procs:
            assert p.stdout is not None and p.stderr is not None
            p.stdout.close()
            p.stderr.close()
        assert sorted(outcomes) == [0, 1]
        history = run_json(database, "case", "history", case_id)
        assert len(history) == 2
        assert run_json(database, "case", "verify", case_id)["ok"] is True


def test_a_closed_pipe_ends_the_command_quietly() -> None:
    """``gengbao schema | head -0``: the reader is gone before the first write."""
    process = subprocess.Popen(
        [GENGBAO, "schema"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    with process.stderr:
        errors = process.stderr.read()
    assert process.wait(timeout=60) == 141
    assert errors == ""


def test_grid_remove_from_the_command_line(database: Database) -> None:
    run(database, "grid", "load", str(GRID_FILE))
    run(
        database, "--now", "2026-09-18T10:00:00+08:00", "case", "create", "farmland_violation",
        "--unit", UNIT, "--actor", REPORTER, "--data", json.dumps(CASE_DATA),
    )  # fmt: skip
    refused = run(database, "grid", "remove", "ddk", check=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith("gengbao: error: unit 'ddk' and its subtree have 1 open")
    unknown = run(database, "grid", "remove", "nowhere", check=False)
    assert (unknown.returncode, unknown.stderr) == (
        1,
        "gengbao: error: unknown grid unit 'nowhere'\n",
    )
    removed = run_json(database, "grid", "remove", "ddk", "--force")
    assert removed["units_deactivated"] > 0 and removed["units_added"] == 0


def test_token_revoke_by_name_revokes_only_that_name(database: Database) -> None:
    """What `make run` does first: the last run's demo tokens stop working."""
    run(database, "grid", "load", str(GRID_FILE))
    for name in ("demo", "demo", "backend"):
        run(database, "token", "create", "--actor", REPORTER, "--name", name)
    revoked = run_json(database, "token", "revoke", "--name", "demo")
    assert [t["name"] for t in revoked] == ["demo", "demo"]
    listed = run_json(database, "token", "list")
    assert sorted((t["name"], t["revoked_at"] is None) for t in listed) == [
        ("backend", True),
        ("demo", False),
        ("demo", False),
    ]
    assert run_json(database, "token", "revoke", "--name", "demo") == []  # nothing left
    usage = run(database, "token", "revoke", check=False)
    assert usage.returncode == 2 and "give a TOKEN_ID_OR_PREFIX or --name NAME" in usage.stderr


def test_case_list_overdue_and_the_case_ledger(database: Database, tmp_path: Path) -> None:
    run(database, "grid", "load", str(GRID_FILE))
    made = [
        run_json(
            database, "--now", "2026-09-18T10:00:00+08:00", "case", "create",
            "farmland_violation", "--unit", UNIT, "--actor", REPORTER,
            "--data", json.dumps(CASE_DATA),
        )["id"]
        for _ in range(2)
    ]  # fmt: skip
    run(
        database, "--now", "2026-09-18T10:30:00+08:00", "case", "event", made[1], "stop_fail",
        "--actor", REPORTER, "--payload", json.dumps({"stop_note": "拒绝停工"}),
    )  # fmt: skip
    # Both states are due within 2 hours of entry: at 12:15 only the first case is late.
    late = run_json(database, "--now", "2026-09-18T12:15:00+08:00", "case", "list", "--overdue")
    assert [c["id"] for c in late] == [made[0]]
    ledger = run(database, "case", "list", "--format", "csv").stdout
    lines = ledger.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("序号,案件编号,流程,版本,当前环节,环节名称,所属网格")
    assert [line.split(",")[1] for line in lines[1:]] == made
    assert ",2026-09-18 10:00," in lines[1]  # local time (Asia/Shanghai)
    out = tmp_path / "cases.xlsx"
    run(database, "case", "list", "--format", "xlsx", "--output", str(out))
    assert out.read_bytes()[:2] == b"PK"


def test_grid_show_and_people(database: Database) -> None:
    run(database, "grid", "load", str(GRID_FILE))
    roots = run_json(database, "grid", "show")
    assert [(r["code"], r["level"]) for r in roots] == [("ddk", "district")]
    village = run_json(database, "grid", "show", "ddk-bq-xh")
    assert [u["code"] for u in village["chain"]] == ["ddk-bq", "ddk"]
    assert ("p-bq-xh-leader", "village.leader") in {
        (r["person"], r["role"]) for r in village["roles"]
    }
    serving = run_json(database, "grid", "people", "--unit", "ddk-bq-xh-1")
    assert {p["id"] for p in serving} == {REPORTER}
    assert serving[0]["roles"] == [{"unit": UNIT, "role": "group.member"}]
    missing = run(database, "grid", "show", "nowhere", check=False)
    assert (missing.returncode, missing.stderr) == (
        1,
        "gengbao: error: unknown grid unit 'nowhere'\n",
    )


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_the_worker_is_quiet_and_stops_cleanly_on_a_signal(
    database: Database, stop: signal.Signals
) -> None:
    """Sent as soon as the start line is out, amid sweeps every 10 ms: the signal is
    waited for, never raised into a sweep or into APScheduler (which would swallow it)."""
    env = {**os.environ, "GENGBAO_DATABASE_URL": database.url}
    worker = subprocess.Popen(
        [GENGBAO, "worker", "--interval", "0.01"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert worker.stdout is not None and worker.stderr is not None
    try:
        with worker.stdout, worker.stderr:
            assert "sweeping every 0.01s" in worker.stdout.readline()  # it is running
            worker.send_signal(stop)
            assert worker.wait(timeout=60) == 0
            assert worker.stderr.read() == ""  # no sweep chatter, no migration lines
    finally:
        if worker.poll() is None:  # never leave a worker firing other tests' timers
            worker.kill()
            worker.wait()


def test_roles_are_checked_against_the_grid(database: Database, tmp_path: Path) -> None:
    """`town.leadr` is a well-formed role that no town has: an error at its line."""
    misspelt = tmp_path / "farmland_violation.yaml"
    text = WORKFLOW_FILE.read_text(encoding="utf-8")
    misspelt.write_text(text.replace("roles: [town.leader", "roles: [town.leadr", 1), "utf-8")
    line = next(
        n for n, t in enumerate(misspelt.read_text("utf-8").splitlines(), 1) if "town.leadr" in t
    )
    checked = run(database, "validate", str(misspelt), "--grid", str(GRID_FILE), check=False)
    assert checked.returncode == 1
    assert f"{misspelt}:{line}:" in checked.stderr
    assert (
        "no town unit of grid" in checked.stderr and "did you mean 'town.leader'?" in checked.stderr
    )
    assert run(database, "validate", str(misspelt)).returncode == 0  # fine without a grid
    run(database, "grid", "load", str(GRID_FILE))
    refused = run(database, "workflow", "load", str(misspelt), check=False)
    assert refused.returncode == 1 and "no town unit of the grid has the role" in refused.stderr
    # Nothing of the misspelt file was registered: only the bundled versions exist.
    listed = run_json(database, "workflow", "list")
    assert [(v["workflow"], v["version"]) for v in listed] == [
        ("farmland_violation", 1),
        ("satellite_spot", 1),
    ]
    assert run(database, "workflow", "load", str(WORKFLOW_FILE)).returncode == 0


def test_people_see_local_times_and_the_new_deadline(database: Database) -> None:
    """Times in the text output are in the settings' zone (Asia/Shanghai), not UTC."""
    run(database, "grid", "load", str(GRID_FILE))
    created = run(
        database, "--now", "2026-09-18T10:00:00+08:00", "case", "create", "farmland_violation",
        "--unit", UNIT, "--actor", REPORTER, "--data", json.dumps(CASE_DATA),
    ).stdout  # fmt: skip
    case_id = created.split()[0]
    assert "  deadline: 2026-09-18 12:00\n" in created  # within 2h of discovery
    history = run(database, "case", "history", case_id).stdout
    assert "2026-09-18 10:00:00  p-bq-xh-1-member" in history
    shown = run(database, "case", "show", case_id).stdout
    assert "pending deadline at 2026-09-18 12:00" in shown
    assert "Z" not in shown.split("escalation level")[1]


def test_rungs_are_numbered_the_same_in_text_and_json(database: Database) -> None:
    """Text says ``level N`` where JSON says ``"level": N`` (and ``"rung": N - 1``)."""
    run(database, "grid", "load", str(GRID_FILE))
    case_id = run_json(
        database, "--now", "2026-09-18T10:00:00+08:00", "case", "create", "farmland_violation",
        "--unit", UNIT, "--actor", REPORTER, "--data", json.dumps(CASE_DATA),
    )["id"]  # fmt: skip
    run(database, "--now", "2026-09-18T12:05:00+08:00", "timers", "run-due")  # deadline, rung 0
    shown = run_json(database, "case", "show", case_id)
    text = run(database, "case", "show", case_id).stdout
    escalations = [t for t in shown["timers"] if t["kind"] == "escalation"]
    assert escalations, shown["timers"]
    for t in escalations:
        assert t["level"] == t["rung"] + 1
        assert f"pending escalation level {t['level']} at" in text
    fired = [f for f in shown["overdue"] if f["rung"] is not None]
    assert [(f["rung"], f["level"]) for f in fired] == [(0, 1)]
    assert "escalated, level 1 (deadline" in text
    assert " rung " not in text
    listed = run_json(database, "timers", "list", "--case", case_id)
    assert {(t["rung"], t["level"]) for t in listed if t["kind"] == "escalation"} == {
        (t["rung"], t["level"]) for t in escalations
    }
    assert (
        f"escalation level {escalations[0]['level']}  case {case_id}"
        in run(database, "timers", "list", "--case", case_id).stdout
    )
