"""Engines, SQLite locking, migrations and the UTC timestamp type."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, exc

from engine.errors import StorageError
from engine.store.db import (
    alembic_config,
    ensure_schema,
    make_engine,
    masked_url,
    normalize_url,
    read_only,
    schema_heads,
    storage_errors,
    upgrade,
)
from engine.store.tables import metadata, people, units, workflow_versions

if TYPE_CHECKING:
    from tests.support.databases import Database

SHANGHAI = timezone(timedelta(hours=8))


def _sqlite(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    return engine


def _insert_person(conn: sa.Connection, person_id: str) -> None:
    conn.execute(people.insert().values(id=person_id, name=person_id))


# ------------------------------------------------------------------ URLs, errors


def test_plain_postgresql_url_gets_psycopg() -> None:
    assert normalize_url("postgresql://u:pw@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"


def test_masked_url_hides_password() -> None:
    shown = masked_url("postgresql://u:secret@h/db")
    assert "secret" not in shown and "***" in shown


def test_connection_failure_is_storage_error_with_masked_url() -> None:
    engine = make_engine("postgresql://gb:secret@127.0.0.1:1/nowhere")
    try:
        with pytest.raises(StorageError) as info:
            ensure_schema(engine)
    finally:
        engine.dispose()
    assert "127.0.0.1:1/nowhere" in str(info.value)
    assert "secret" not in str(info.value) and "***" in str(info.value)


def test_bad_or_unsupported_url_is_storage_error() -> None:
    with pytest.raises(StorageError, match="unsupported"):
        make_engine("mysql://u@h/db")
    with pytest.raises(StorageError, match="invalid database URL"):
        make_engine("not a url")


def test_sqlite_folder_is_created(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'deep' / 'g.db'}")
    try:
        assert (tmp_path / "var" / "deep").is_dir()
        ensure_schema(engine)
        assert (tmp_path / "var" / "deep" / "g.db").is_file()
    finally:
        engine.dispose()


# ------------------------------------------------------------------ SQLite specifics


def test_sqlite_pragmas_in_effect(tmp_path: Path) -> None:
    engine = _sqlite(tmp_path)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL: durable
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_sqlite_foreign_keys_enforced(tmp_path: Path) -> None:
    engine = _sqlite(tmp_path)
    try:
        with pytest.raises(exc.IntegrityError), engine.begin() as conn:
            conn.execute(
                units.insert().values(
                    code="x", name="x", level="town", parent_code="missing", path="/x/", depth=0
                )
            )
    finally:
        engine.dispose()


def test_begin_immediate_takes_the_write_lock_before_any_write(tmp_path: Path) -> None:
    first = _sqlite(tmp_path)
    second = make_engine(first.url, busy_timeout_ms=50)
    try:
        with first.connect() as holder:
            with holder.begin():
                holder.execute(sa.select(people.c.id)).all()  # has only read so far
                with (
                    pytest.raises(StorageError, match="locked") as info,
                    storage_errors(second),
                    second.begin() as conn,
                ):
                    _insert_person(conn, "blocked")
                assert str(tmp_path) in str(info.value)
            with second.begin() as conn:  # the lock is released with the commit
                _insert_person(conn, "after")
    finally:
        second.dispose()
        first.dispose()


def test_read_only_transactions_do_not_take_the_write_lock(tmp_path: Path) -> None:
    first = _sqlite(tmp_path)
    second = make_engine(first.url, busy_timeout_ms=50)
    try:
        with read_only(first).connect() as reader, reader.begin():
            reader.execute(sa.select(people.c.id)).all()
            with second.begin() as conn:
                _insert_person(conn, "writer")
    finally:
        second.dispose()
        first.dispose()


def test_blocked_writer_waits_for_the_lock(tmp_path: Path) -> None:
    first = _sqlite(tmp_path)
    second = make_engine(first.url)  # default busy timeout: 10 s
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with second.begin() as conn:
                _insert_person(conn, "waited")
        except BaseException as error:  # reported to the main thread
            errors.append(error)
        finally:
            done.set()

    try:
        with first.connect() as holder:
            transaction = holder.begin()
            holder.execute(sa.select(people.c.id)).all()
            thread = threading.Thread(target=write)
            thread.start()
            assert not done.wait(0.2), "the writer should be waiting for the lock"
            transaction.commit()
        thread.join(timeout=20)
        assert done.is_set() and not errors
        with first.connect() as conn:
            assert conn.execute(sa.select(people.c.id)).scalars().all() == ["waited"]
    finally:
        second.dispose()
        first.dispose()


# ------------------------------------------------------------------ migrations


def test_upgrade_is_idempotent_and_matches_tables(empty_database: Database) -> None:
    engine = empty_database.new_engine()
    upgrade(engine)
    upgrade(engine)
    ensure_schema(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn)
        assert set(context.get_current_heads()) == set(schema_heads())
        assert compare_metadata(context, metadata) == []
        names = set(sa.inspect(conn).get_table_names())
    assert names == set(metadata.tables) | {"alembic_version"}


def test_ensure_schema_upgrades_an_empty_database(empty_database: Database) -> None:
    engine = empty_database.new_engine()
    ensure_schema(engine)
    ensure_schema(engine)
    with engine.connect() as conn:
        assert set(MigrationContext.configure(conn).get_current_heads()) == set(schema_heads())


def test_0012_renames_row_version_to_revision_keeping_every_value(
    empty_database: Database,
) -> None:
    engine = empty_database.new_engine()
    upgrade(engine, "0011")
    at = datetime(2026, 9, 18, 2, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            units.insert().values(code="u", name="村", level="village", path="/u/", depth=0)
        )
        definition = conn.execute(
            workflow_versions.insert().values(_version_row(at)).returning(workflow_versions.c.id)
        ).scalar_one()
        old = sa.MetaData()
        old_cases = sa.Table("cases", old, autoload_with=conn)
        old_history = sa.Table("history", old, autoload_with=conn)
        assert "row_version" in old_cases.c and "revision" not in old_cases.c
        conn.execute(
            old_cases.insert().values(
                id="C1", workflow="w", definition_id=definition, state="s", unit_code="u",
                data={}, row_version=7, opened_at=at, state_entered_at=at, updated_at=at,
                created_by="p",
            )
        )  # fmt: skip
        conn.execute(
            old_history.insert().values(
                case_id="C1", seq=1, at=at, actor="p", trigger="create", to_state="s",
                payload={}, definition_id=definition, prev_hash="0", hash="h",
            )
        )  # fmt: skip

    def case_columns() -> tuple[set[str], int]:
        with engine.connect() as conn:
            table = sa.Table("cases", sa.MetaData(), autoload_with=conn)
            names = set(table.c.keys())
            column = "revision" if "revision" in names else "row_version"
            value = conn.execute(sa.select(table.c[column])).scalar_one()
            history_rows = conn.execute(sa.text("SELECT count(*) FROM history")).scalar_one()
        assert history_rows == 1
        return names & {"revision", "row_version"}, value

    upgrade(engine)
    assert case_columns() == ({"revision"}, 7)
    with engine.begin() as conn:
        from alembic import command

        command.downgrade(alembic_config(conn), "0011")
    assert case_columns() == ({"row_version"}, 7)


def test_ensure_schema_refuses_a_newer_database(empty_database: Database) -> None:
    engine = empty_database.new_engine()
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(StorageError, match="9999_future"):
        ensure_schema(engine)


# ------------------------------------------------------------------ types


def _version_row(at: datetime, n: int = 1) -> dict[str, object]:
    return {
        "workflow": "w",
        "version": n,
        "content_hash": f"h{n}",
        "title": "标题",
        "source": "states: {}",
        "loaded_at": at,
    }


def test_utc_datetime_round_trip(engine: Engine) -> None:
    local = datetime(2024, 10, 1, 8, 30, 15, 123456, tzinfo=SHANGHAI)
    with engine.begin() as conn:
        conn.execute(workflow_versions.insert(), [_version_row(local)])
    with engine.connect() as conn:
        loaded = conn.execute(sa.select(workflow_versions.c.loaded_at)).scalar_one()
    assert loaded == local
    assert loaded.tzinfo is UTC
    assert loaded == datetime(2024, 10, 1, 0, 30, 15, 123456, tzinfo=UTC)


def test_utc_datetime_compares_across_zones(engine: Engine) -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            workflow_versions.insert(),
            [_version_row(base + timedelta(hours=h), n=h + 1) for h in range(4)],
        )
    cutoff = (base + timedelta(hours=1, minutes=30)).astimezone(SHANGHAI)
    with engine.connect() as conn:
        query = sa.select(workflow_versions.c.version).where(workflow_versions.c.loaded_at < cutoff)
        assert sorted(conn.execute(query).scalars()) == [1, 2]


def test_utc_datetime_refuses_naive(engine: Engine) -> None:
    with pytest.raises(exc.StatementError, match="naive"), engine.begin() as conn:
        conn.execute(workflow_versions.insert(), [_version_row(datetime(2024, 1, 1))])


def test_json_keeps_chinese_readable(engine: Engine) -> None:
    from engine.store.tables import idempotency

    document = {"说明": "违法建房", "面积": 1.5, "列表": [1, None, True]}
    with engine.begin() as conn:
        conn.execute(
            idempotency.insert().values(
                actor="a",
                key="k",
                request_hash="h",
                kind="event",
                response=document,
                created_at=datetime(2024, 1, 1, tzinfo=UTC),
            )
        )
    with engine.connect() as conn:
        assert conn.execute(sa.select(idempotency.c.response)).scalar_one() == document
        if engine.dialect.name == "sqlite":
            raw = conn.exec_driver_sql("SELECT response FROM idempotency").scalar_one()
            assert "违法建房" in raw
