"""Settings: defaults ← file ← environment, and clear errors for a bad file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.settings import (
    DEFAULT_DATABASE_URL,
    NotificationSettings,
    Settings,
    TimerSettings,
    load_settings,
)
from engine.timers.retry import RetryPolicy

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
    assert settings.grid_file is None and settings.source is None
    assert settings.notifications == NotificationSettings()


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
        "notifications:\n  channels:\n    email: {host: mail.example, port: 25, sender: a@b.cn}\n",
    )
    settings = load_settings(env={})
    assert settings.database_url == "sqlite:///data/g.db"
    assert settings.workflows_dir == Path("wf")
    assert settings.timezone == "UTC"
    assert settings.grid_file == Path("config/grid/demo.yaml")
    assert settings.notifications.channels == {
        "email": {"host": "mail.example", "port": 25, "sender": "a@b.cn"}
    }
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
        (
            "databse_url: x\n",
            "1:1: error: databse_url: unknown key 'databse_url'; did you mean 'database_url'?",
        ),
        ("timezone: Mars/Olympus\n", "1:11: error: timezone: unknown time zone 'Mars/Olympus'"),
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
        match="allowed: api, board, data_dir, database, database_url, grid_file, notifications, "
        "photos, reminders, serve, timers, timezone, workflows_dir",
    ):
        load_settings(file, env={})


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml", env={})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(env={"GENGBAO_CONFIG": str(tmp_path / "nope.yaml")})


# -- every block is checked when the settings load -----------------------------------


def _problems(file: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(file, env={})
    assert str(info.value) == "\n".join(info.value.details["problems"])
    problems: list[str] = info.value.details["problems"]
    return problems


def test_a_mistyped_notifications_key_is_an_error_at_its_line(tmp_path: Path) -> None:
    file = _write(
        tmp_path / "g.yaml", "timezone: UTC\nnotifications:\n  retri: {max_attempts: 3}\n"
    )
    assert _problems(file) == [
        f"{file}:3:3: error: notifications.retri: unknown key 'retri'; did you mean 'retry'? "
        "(allowed: base_url, channels, dispatch, retry)"
    ]


def test_a_word_for_a_number_of_attempts_says_so_at_its_line(tmp_path: Path) -> None:
    file = _write(tmp_path / "g.yaml", "timers:\n  retry:\n    max_attempts: lots\n")
    assert _problems(file) == [
        f"{file}:3:19: error: timers.retry.max_attempts: expected a whole number ≥ 1, "
        "got text ('lots')"
    ]
    file = _write(tmp_path / "n.yaml", "notifications:\n  retry: {max_attempts: lots}\n")
    assert _problems(file) == [
        f"{file}:2:25: error: notifications.retry.max_attempts: expected a whole number ≥ 1, "
        "got text ('lots')"
    ]


def test_every_problem_of_every_block_is_reported_together(tmp_path: Path) -> None:
    file = _write(
        tmp_path / "g.yaml",
        "timezone: Mars/Olympus\n"  # 1
        "api:\n"  # 2
        "  max_body_bytes: 1.5\n"  # 3
        "  metrics_roles: [district.ofice, cty.office]\n"  # 4
        "serve:\n"  # 5
        "  host: 8000\n"  # 6
        "  prot: 9000\n"  # 7
        "notifications:\n"  # 8
        "  base_url: [x]\n"  # 9
        "  channels:\n"  # 10
        "    emial: {}\n"  # 11
        "    wecom: {url: not-a-url}\n"  # 12
        "  dispatch: {concurrency: 0}\n"  # 13
        "timers: {retry: {backoff_seconds: 600, backoff_max_seconds: 60}}\n"  # 14
        "reminders: {office_hours: '18:00-08:00'}\n"  # 15
        "database: {sqlite_synchronous: fast}\n",  # 16
    )
    problems = _problems(file)
    where = [p.split(": error: ")[0].removeprefix(f"{file}:") for p in problems]
    assert where == [
        "1:11",
        "3:19",
        "4:35",
        "6:9",
        "7:3",
        "9:13",
        "11:5",
        "12:18",
        "13:27",
        "14:61",
        "15:27",
        "16:32",
    ], problems
    text = "\n".join(problems)
    assert "api.max_body_bytes: expected a whole number ≥ 1, got a number (1.5)" in text
    assert "api.metrics_roles[1]: unknown level 'cty' (levels: district, town, village" in text
    assert "serve.host: expected non-empty text, got a number (8000)" in text
    assert "serve.prot: unknown key 'prot'; did you mean 'port'?" in text
    assert "notifications.channels.emial: unknown channel 'emial'; did you mean 'email'?" in text
    assert "notifications.channels.wecom.url: expected an http:// or https:// URL" in text
    assert "notifications.dispatch.concurrency: expected a whole number ≥ 1" in text
    assert "timers.retry: backoff_max_seconds (60) is less than backoff_seconds (600)" in text
    assert "reminders.office_hours: office hours '18:00-08:00': the end must be after" in text


def test_wrong_types_in_the_api_and_serve_blocks(tmp_path: Path) -> None:
    file = _write(tmp_path / "g.yaml", "api: [max_body_bytes]\nserve:\n  port: '8000'\n")
    assert _problems(file) == [
        f"{file}:1:6: error: api: expected a mapping "
        "(max_body_bytes, metrics_roles, admin_roles), got a list",
        f"{file}:3:9: error: serve.port: expected a whole number from 1 to 65535, "
        "got text ('8000')",
    ]


def test_the_blocks_become_frozen_settings(tmp_path: Path) -> None:
    file = _write(
        tmp_path / "g.yaml",
        "api: {max_body_bytes: 2048, metrics_roles: [town.office]}\n"
        "serve: {host: 0.0.0.0, port: 9000, sweep_seconds: 0.5}\n"
        "timers:\n  retry: {max_attempts: 2}\n"
        "notifications:\n  base_url: https://g.example\n  retry: {lease_seconds: 60}\n",
    )
    settings = load_settings(file, env={})
    assert (settings.api.max_body_bytes, settings.api.metrics_roles) == (2048, ("town.office",))
    assert (settings.serve.host, settings.serve.port, settings.serve.sweep_seconds) == (
        "0.0.0.0",
        9000,
        0.5,
    )
    assert settings.timers == TimerSettings(retry=RetryPolicy(max_attempts=2))
    assert settings.notifications.base_url == "https://g.example"
    assert settings.notifications.policy.lease_seconds == 60.0
    with pytest.raises(AttributeError):
        settings.serve.port = 1  # type: ignore[misc]


def test_a_block_given_in_code_is_checked_like_the_file(tmp_path: Path) -> None:
    settings = Settings(timers={"retry": {"max_attempts": 3}})  # type: ignore[arg-type]
    assert settings.timers.retry.max_attempts == 3
    with pytest.raises(ConfigError) as info:
        Settings(notifications={"retri": {}})  # type: ignore[arg-type]
    assert str(info.value) == (
        "notifications.retri: unknown key 'retri'; did you mean 'retry'? "
        "(allowed: base_url, channels, dispatch, retry)"
    )


def test_the_cli_prints_the_settings_errors_without_a_traceback(tmp_path: Path) -> None:
    file = _write(
        tmp_path / "g.yaml", "notifications:\n  retri: {}\ntimers: {retry: {max_attempts: lots}}\n"
    )
    done = subprocess.run(
        [str(Path(sys.executable).parent / "gengbao"), "--config", str(file), "timers", "list"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "GENGBAO_DATABASE_URL": f"sqlite:///{tmp_path / 'g.db'}"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr == (
        f"{file}:2:3: error: notifications.retri: unknown key 'retri'; "
        "did you mean 'retry'? (allowed: base_url, channels, dispatch, retry)\n"
        f"{file}:3:32: error: timers.retry.max_attempts: expected a whole number ≥ 1, "
        "got text ('lots')\n"
    )


def test_board_photos_and_data_dir_settings_are_read_and_checked(tmp_path: Path) -> None:
    file = _write(
        tmp_path / "ok.yaml",
        "data_dir: /srv/gengbao\nboard: {due_soon: 2h}\nphotos: {max_bytes: 2048}\n",
    )
    settings = load_settings(file, env={})
    assert settings.data_dir == Path("/srv/gengbao")
    assert settings.board.due_soon_seconds == 7200
    assert settings.photos.max_bytes == 2048
    text = "board: {due_soon: 2 working days}\nphotos: {max_bytes: 0}\n"
    bad = _write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_settings(bad, env={})
    assert "board.due_soon: an exact span" in str(info.value)
    assert "photos.max_bytes" in str(info.value)
