"""Golden databases, one per schema revision: what a database at that revision held.

``python -m tests.support.migrations [REVISION ...]`` writes
``tests/data/migrations/<revision>.sql`` for the given revisions (default:
every revision that has no file yet; a file once written is frozen, as
SpiffWorkflow keeps its serialization golden files).  Each file is data only,
plain ``INSERT`` statements with the columns that revision's tables had
(serial ids left to the database, so PostgreSQL's sequences move on), for
a schema made by ``upgrade(engine, revision)``; :func:`load_golden` loads one
into SQLite or PostgreSQL.  The generator checks every file by loading it
into a fresh SQLite database at its revision before writing it.

What the data is: a small piece of the demo grid (八桥镇 / 新华村 / 新华村一组,
the group member who reports and the village leader who reports on), the
farmland workflow as version 1, and one case opened at 09:00 and stopped
without success at 09:20 on 2026-09-18 (Shanghai), so it waits in
``stop_failed`` for the village to report.  As gengbao wrote it at that
revision: history hashed with scheme 1 before 0008 and scheme 2 from it on,
``cases.head_hash`` only from 0003, the state's deadline row from 0002, the
workflow's activation from 0007, the day's id counter from 0011.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from engine.cases.history import GENESIS, row_hash
from engine.definitions import load_definition
from engine.store.db import alembic_config, make_engine, upgrade
from tests.support.farmland import CASE_DATA, LIFECYCLE, REPORTER, UNIT, WORKFLOW_FILE
from tests.support.paths import DATA

__all__ = [
    "CASE_ID",
    "GOLDEN",
    "OPENED",
    "STOPPED",
    "golden_file",
    "golden_sql",
    "load_golden",
    "revisions",
]

GOLDEN = DATA / "migrations"
CASE_ID = "C20260918-0001"
LOADED = datetime(2026, 9, 18, 0, 30, tzinfo=UTC)
OPENED = datetime(2026, 9, 18, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
STOPPED = OPENED + timedelta(minutes=20)
STOP_FAIL = LIFECYCLE[0]
VILLAGE_LEADER = LIFECYCLE[1][1]


def revisions() -> list[str]:
    """Every schema revision, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def golden_file(revision: str) -> Path:
    return GOLDEN / f"{revision}.sql"


def _hash_scheme(revision: str) -> int:
    return 1 if revision < "0008" else 2


def _rows(revision: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(table, row) in insertion order, with every column of the newest schema."""
    workflow = load_definition(WORKFLOW_FILE)
    chain = [
        ("ddk", "大渡口区", "district"),
        ("ddk-bq", "八桥镇", "town"),
        ("ddk-bq-xh", "新华村", "village"),
        (UNIT, "新华村一组", "group"),
    ]
    path, parent = "/", None
    for depth, (code, name, level) in enumerate(chain):
        path += f"{code}/"
        yield (
            "units",
            {
                "code": code,
                "name": name,
                "level": level,
                "parent_code": parent,
                "path": path,
                "depth": depth,
                "active": True,
            },
        )
        parent = code
    for person, name in ((REPORTER, "毛海涛"), (VILLAGE_LEADER, "韦春梅")):
        email = f"{person.removeprefix('p-')}@example.org"
        yield (
            "people",
            {
                "id": person,
                "name": name,
                "phone": None,
                "email": email,
                "webhook": None,
                "active": True,
                "kind": "person",
            },
        )
    for person, unit, role in [(REPORTER, UNIT, "member"), (VILLAGE_LEADER, "ddk-bq-xh", "leader")]:
        yield (
            "person_roles",
            {
                "person_id": person,
                "unit_code": unit,
                "role": role,
                "active": True,
            },
        )
    # Serial ids are the database's: each table starts empty, so this is version id 1.
    yield (
        "workflow_versions",
        {
            "workflow": workflow.id,
            "version": 1,
            "content_hash": workflow.content_hash,
            "title": workflow.title,
            "source": WORKFLOW_FILE.read_text(encoding="utf-8"),
            "path": "workflows/farmland_violation.yaml",
            "loaded_at": LOADED,
        },
    )
    yield (
        "workflow_activations",
        {
            "workflow": workflow.id,
            "definition_id": 1,
            "activated_at": LOADED,
            "path": "workflows/farmland_violation.yaml",
        },
    )
    trigger, actor, payload, reached = STOP_FAIL
    entries = [
        (1, OPENED, REPORTER, "create", None, "discovered", CASE_DATA),
        (2, STOPPED, actor, trigger, "discovered", reached, payload),
    ]
    scheme = _hash_scheme(revision)
    history: list[dict[str, Any]] = []
    prev = GENESIS
    for seq, at, who, what, source, target, body in entries:
        record = {
            "case_id": CASE_ID,
            "seq": seq,
            "at": at,
            "actor": who,
            "trigger": what,
            "from": source,
            "to": target,
            "payload": body,
            "definition_id": 1,
        }
        digest = row_hash(prev, record, scheme)
        history.append(
            {
                "case_id": CASE_ID,
                "seq": seq,
                "at": at,
                "actor": who,
                "trigger": what,
                "from_state": source,
                "to_state": target,
                "payload": body,
                "definition_id": 1,
                "prev_hash": prev,
                "hash": digest,
                "hash_scheme": scheme,
            }
        )
        prev = digest
    deadline = STOPPED + timedelta(hours=2)
    yield (
        "cases",
        {
            "id": CASE_ID,
            "workflow": workflow.id,
            "definition_id": 1,
            "state": reached,
            "unit_code": UNIT,
            "data": {**CASE_DATA, **payload},
            "row_version": 2,  # its name until 0012
            "revision": 2,
            "escalation_level": 0,
            "opened_at": OPENED,
            "state_entered_at": STOPPED,
            "closed_at": None,
            "deadline_at": deadline,
            "head_hash": prev,
            "updated_at": STOPPED,
            "created_by": REPORTER,
        },
    )
    for row in history:
        yield "history", row
    yield "state_entries", {"case_id": CASE_ID, "state": "discovered", "first_entered_at": OPENED}
    yield "state_entries", {"case_id": CASE_ID, "state": reached, "first_entered_at": STOPPED}
    yield (
        "timers",
        {
            "case_id": CASE_ID,
            "state": reached,
            "case_revision": 2,
            "kind": "deadline",
            "rung": None,
            "deadline_at": deadline,
            "due_at": deadline,
            "repeat_seconds": None,
            "status": "pending",
            "created_at": STOPPED,
            "fired_at": None,
            "fired_by": None,
            "rule_id": None,
            "period_start": None,
            "detail": None,
            "attempts": 0,
            "last_error": None,
            "next_attempt_at": None,
        },
    )
    yield "id_counters", {"prefix": "C", "day": "20260918", "last": 1}


def _literal(value: Any) -> str:
    """*value* as SQL text both SQLite and PostgreSQL read the same way."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):  # naive UTC text: what UTCDateTime stores on SQLite
        return _literal(value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds"))
    if isinstance(value, (dict, list)):
        return _literal(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def _columns(engine: Engine) -> dict[str, list[str]]:
    inspector = sa.inspect(engine)
    return {t: [c["name"] for c in inspector.get_columns(t)] for t in inspector.get_table_names()}


def golden_sql(revision: str, columns: dict[str, list[str]]) -> str:
    """The golden data of *revision*, for tables with *columns* (that revision's)."""
    lines = [
        f"-- gengbao golden data at schema revision {revision} "
        "(written by python -m tests.support.migrations; do not edit)"
    ]
    for table, row in _rows(revision):
        if table not in columns:
            continue
        kept = {name: value for name, value in row.items() if name in columns[table]}
        names = ", ".join(f'"{name}"' for name in kept)
        values = ", ".join(_literal(value) for value in kept.values())
        lines.append(f'INSERT INTO "{table}" ({names}) VALUES ({values});')
    return "\n".join(lines) + "\n"


def load_golden(engine: Engine, revision: str) -> None:
    """Bring *engine*'s empty database to *revision* and load that revision's golden file."""
    upgrade(engine, revision)
    script = golden_file(revision).read_text(encoding="utf-8")
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            raw.driver_connection.executescript(script)  # type: ignore[union-attr]
        else:
            cursor = raw.cursor()
            cursor.execute("SET TIME ZONE 'UTC'")  # the file's timestamps are UTC
            cursor.execute(script)  # no parameters: psycopg runs every statement
            cursor.close()
            raw.commit()
    finally:
        raw.close()


def write(revision: str) -> Path:
    """Write *revision*'s golden file, checked by loading it into a fresh SQLite file."""
    with tempfile.TemporaryDirectory(prefix="gb-golden-") as folder:
        engine = make_engine(f"sqlite:///{folder}/golden.db")
        try:
            upgrade(engine, revision)
            text = golden_sql(revision, _columns(engine))
            GOLDEN.mkdir(parents=True, exist_ok=True)
            target = golden_file(revision)
            target.write_text(text, encoding="utf-8")
            engine.dispose()
            engine = make_engine(f"sqlite:///{folder}/check.db")
            load_golden(engine, revision)
        finally:
            engine.dispose()
    return target


def main(argv: Sequence[str]) -> int:
    wanted = list(argv) or [r for r in revisions() if not golden_file(r).exists()]
    for revision in wanted:
        print(write(revision))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
