"""Acknowledged means durable: the embedded SQLite syncs every commit unless told otherwise."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool

from engine.app import App
from engine.errors import ConfigError, StorageError
from engine.settings import SQLITE_SYNCHRONOUS, DatabaseSettings, Settings, load_settings
from engine.store.db import SQLITE_SYNCHRONOUS_LEVELS, make_engine, read_only

FULL, NORMAL = 2, 1  # what PRAGMA synchronous reports


def levels_of_pooled_connections(engine: Engine, count: int = 4) -> set[int]:
    """PRAGMA synchronous on *count* connections checked out at once (each a new one).

    Readers (deferred BEGIN), so they can all be open together."""
    reader = read_only(engine)
    with ExitStack() as stack:
        conns = [stack.enter_context(reader.connect()) for _ in range(count)]
        seen = {c.exec_driver_sql("PRAGMA synchronous").scalar_one() for c in conns}
    assert isinstance(engine.pool, QueuePool)
    assert engine.pool.checkedin() >= 1  # they went back to the pool, and are reused
    with reader.connect() as again:
        seen.add(again.exec_driver_sql("PRAGMA synchronous").scalar_one())
    return seen


def test_the_default_is_full_on_every_pooled_connection(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    try:
        assert levels_of_pooled_connections(engine) == {FULL}
    finally:
        engine.dispose()


def test_normal_is_an_explicit_opt_out(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}", sqlite_synchronous="normal")
    try:
        assert levels_of_pooled_connections(engine) == {NORMAL}
    finally:
        engine.dispose()


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(StorageError, match="'off'; use one of: normal, full, extra"):
        make_engine("sqlite://", sqlite_synchronous="off")


def test_settings_and_engine_agree_on_the_levels() -> None:
    assert set(SQLITE_SYNCHRONOUS) == set(SQLITE_SYNCHRONOUS_LEVELS)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_the_settings_file_opts_out(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    file = write(tmp_path / "g.yaml", "database:\n  sqlite_synchronous: normal\n")
    settings = load_settings(file, env={"GENGBAO_DATABASE_URL": url})
    assert settings.database == DatabaseSettings(sqlite_synchronous="normal")
    app = App(settings)
    try:
        assert levels_of_pooled_connections(app.engine) == {NORMAL}
    finally:
        app.close()
    assert load_settings(write(tmp_path / "d.yaml", "database: {}\n"), env={}).database == (
        DatabaseSettings(sqlite_synchronous="full")
    )


def test_an_app_without_the_block_runs_full(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    app = App(Settings(database_url=url))
    try:
        assert levels_of_pooled_connections(app.engine) == {FULL}
    finally:
        app.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "database:\n  sqlite_synchronous: fast\n",
            "g.yaml:2:23: error: database.sqlite_synchronous: expected one of full, normal, extra",
        ),
        (
            "database:\n  sqlite_synchronus: full\n",
            "g.yaml:2:3: error: database.sqlite_synchronus: unknown key 'sqlite_synchronus'; "
            "did you mean "
            "'sqlite_synchronous'? (allowed: sqlite_synchronous)",
        ),
        ("database: full\n", "g.yaml:1:11: error: database: expected a mapping"),
    ],
)
def test_a_bad_database_block_says_what_and_where(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path / "g.yaml", text), env={})
    assert message in str(caught.value)
