"""The ``api:`` and ``serve:`` blocks of the settings file."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.api.options import ApiOptions, ServeOptions
from engine.errors import ConfigError
from engine.settings import load_settings


def test_defaults_without_the_blocks(tmp_path: Path) -> None:
    file = tmp_path / "gengbao.yaml"
    file.write_text("timezone: Asia/Shanghai\n", encoding="utf-8")
    settings = load_settings(file, env={})
    assert ApiOptions.from_settings(settings).max_body_bytes == 1024 * 1024
    assert ServeOptions.from_settings(settings) == ServeOptions("127.0.0.1", 8000, 5.0, 5.0, 30.0)


def test_values_from_the_settings_file(tmp_path: Path) -> None:
    file = tmp_path / "gengbao.yaml"
    file.write_text(
        "api: {max_body_bytes: 2048}\nserve: {port: 9000, sweep_seconds: 0.5}\n", encoding="utf-8"
    )
    settings = load_settings(file, env={})
    assert ApiOptions.from_settings(settings).max_body_bytes == 2048
    serve = ServeOptions.from_settings(settings)
    assert (serve.port, serve.sweep_seconds, serve.dispatch_seconds) == (9000, 0.5, 5.0)


def test_every_problem_is_reported_with_its_line_and_key(tmp_path: Path) -> None:
    file = tmp_path / "gengbao.yaml"
    file.write_text(
        "serve: {port: 70000, sweep_secnds: 1, dispatch_seconds: -1}\napi: {max_body_bytes: big}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(file, env={})
    message = str(info.value)
    assert f"{file}:1:15: error: serve.port: expected a whole number from 1 to 65535" in message
    assert (
        f"{file}:1:22: error: serve.sweep_secnds: unknown key 'sweep_secnds'; "
        "did you mean 'sweep_seconds'?"
    ) in message
    assert (
        f"{file}:1:57: error: serve.dispatch_seconds: expected a number > 0 and < 86400, "
        "got a number (-1)"
    ) in message
    assert f"{file}:2:23: error: api.max_body_bytes: expected a whole number ≥ 1" in message
    assert len(info.value.details["problems"]) == 4
