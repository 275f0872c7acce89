"""Settings: defaults ← file ← environment, and clear errors for a bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.settings import DEFAULT_DATABASE_URL, Settings, load_settings

REPO = Path(__file__).resolve().parents[1]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_defaults_without_a_file() -> None:
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite:///var/gengbao.db"
    assert settings.timezone == "Asia/Shanghai"
    assert settings.workflows_dir == Path("workflows")
    assert settings.grid_file is None and settings.notifications == {} and settings.source is None


def test_shipped_file_holds_the_defaults() -> None:
    settings = load_settings(REPO / "config" / "gengbao.yaml", env={})
    assert settings == Settings(source=REPO / "config" / "gengbao.yaml")


def test_default_file_in_the_current_directory(tmp_path: Path) -> None:
    _write(
        tmp_path / "config" / "gengbao.yaml",
        "database_url: sqlite:///data/g.db\n"
        "workflows_dir: wf\n"
        "timezone: UTC\n"
        "grid_file: config/grid/demo.yaml\n"
        "notifications:\n  smtp: {host: mail.example, port: 25}\n",
    )
    settings = load_settings(env={})
    assert settings.database_url == "sqlite:///data/g.db"
    assert settings.workflows_dir == Path("wf")
    assert settings.timezone == "UTC"
    assert settings.grid_file == Path("config/grid/demo.yaml")
    assert settings.notifications == {"smtp": {"host": "mail.example", "port": 25}}
    assert settings.source == Path("config/gengbao.yaml")


def test_precedence_explicit_path_then_env_file_then_default(tmp_path: Path) -> None:
    _write(tmp_path / "config" / "gengbao.yaml", "timezone: UTC\n")
    env_file = _write(tmp_path / "env.yaml", "timezone: Asia/Urumqi\n")
    explicit = _write(tmp_path / "explicit.yaml", "timezone: Asia/Tokyo\n")
    assert load_settings(env={}).timezone == "UTC"
    assert load_settings(env={"GENGBAO_CONFIG": str(env_file)}).timezone == "Asia/Urumqi"
    settings = load_settings(explicit, env={"GENGBAO_CONFIG": str(env_file)})
    assert (settings.timezone, settings.source) == ("Asia/Tokyo", explicit)


def test_env_database_url_overrides_the_file(tmp_path: Path) -> None:
    file = _write(tmp_path / "g.yaml", "database_url: sqlite:///from-file.db\n")
    env = {"GENGBAO_DATABASE_URL": "postgresql://pg/db"}
    assert load_settings(file, env=env).database_url == "postgresql://pg/db"
    assert load_settings(file, env={"GENGBAO_DATABASE_URL": ""}).database_url == (
        "sqlite:///from-file.db"
    )
    assert load_settings(env=env).database_url == "postgresql://pg/db"


def test_comment_only_file_means_defaults(tmp_path: Path) -> None:
    file = _write(tmp_path / "g.yaml", "# nothing here\n\n")
    assert load_settings(file, env={}) == Settings(source=file)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("databse_url: x\n", "1:1: unknown key 'databse_url'; did you mean 'database_url'?"),
        ("timezone: Mars/Olympus\n", "1:11: timezone: unknown time zone 'Mars/Olympus'"),
        ("workflows_dir: 3\n", "workflows_dir: expected non-empty text"),
        ("notifications: [a]\n", "notifications: expected a mapping"),
        ("- a\n", "must be a mapping of keys"),
        ("timezone: [\n", "YAML syntax"),
    ],
    ids=["unknown-key", "bad-zone", "not-text", "not-mapping", "list-root", "syntax"],
)
def test_bad_file_names_file_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    file = _write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_settings(file, env={})
    message = str(info.value)
    assert message.startswith(str(file)), message
    assert expected in message
    assert info.value.details["file"] == str(file)


def test_unknown_key_lists_the_allowed_ones(tmp_path: Path) -> None:
    file = _write(tmp_path / "bad.yaml", "colour: red\n")
    with pytest.raises(
        ConfigError,
        match="allowed: api, database, database_url, grid_file, notifications, reminders, serve, "
        "timers",
    ):
        load_settings(file, env={})


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml", env={})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(env={"GENGBAO_CONFIG": str(tmp_path / "nope.yaml")})
