"""Settings: ``config/gengbao.yaml`` (or ``$GENGBAO_CONFIG``), then the environment.

Precedence, lowest first: built-in defaults, the settings file, environment
variables.  The file is the explicit *path* argument if given, else
``$GENGBAO_CONFIG``, else ``config/gengbao.yaml`` in the current directory
(optional: a missing default file means defaults).  ``$GENGBAO_DATABASE_URL``
overrides ``database_url``.  Relative paths are kept relative to the current
directory, like the default file itself.

Every block is checked when the settings load (:mod:`engine.settings.blocks`
has each block's keys), and every problem is reported at once in one
:class:`ConfigError`, each line ``FILE:LINE:COL: error: PATH: MESSAGE`` with a
did-you-mean for a mistyped key.  Settings built in code (``Settings(timers=
{"retry": {...}})``) may pass a plain mapping for a block; it is checked the
same way, its problems naming the key path only.

The ``database`` block tunes the storage: ``sqlite_synchronous`` is the
embedded SQLite's ``PRAGMA synchronous`` (``full``, the default: an
acknowledged commit survives a power loss or an OS crash; ``normal``: faster,
but under WAL the last commits can be lost that way, never corrupted).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.definitions.office_hours import Reminders
from engine.errors import ConfigError
from engine.settings.blocks import (
    SQLITE_SYNCHRONOUS,
    ApiOptions,
    BoardSettings,
    DatabaseSettings,
    NotificationSettings,
    PhotoSettings,
    ServeOptions,
    TimerSettings,
    read_api,
    read_board,
    read_database,
    read_notifications,
    read_photos,
    read_reminders,
    read_serve,
    read_timers,
)
from engine.yamlkit import Diagnostic, MapNode, Node, NodeReader, from_plain, is_null, parse_yaml

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_DATABASE_URL",
    "SQLITE_SYNCHRONOUS",
    "ApiOptions",
    "BoardSettings",
    "DatabaseSettings",
    "NotificationSettings",
    "PhotoSettings",
    "ServeOptions",
    "Settings",
    "TimerSettings",
    "load_settings",
]

DEFAULT_CONFIG_FILE = Path("config/gengbao.yaml")
DEFAULT_DATABASE_URL = "sqlite:///var/gengbao.db"
ENV_CONFIG = "GENGBAO_CONFIG"
ENV_DATABASE_URL = "GENGBAO_DATABASE_URL"


@dataclass(frozen=True)
class Settings:
    """Resolved, checked settings; ``source`` is the file they came from, if any."""

    database_url: str = DEFAULT_DATABASE_URL
    workflows_dir: Path = Path("workflows")
    data_dir: Path = Path("var")  # files the service keeps: patrol photos in photos/
    timezone: str = "Asia/Shanghai"
    grid_file: Path | None = None
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    api: ApiOptions = field(default_factory=ApiOptions)  # read by engine/api
    serve: ServeOptions = field(default_factory=ServeOptions)  # read by gengbao serve
    reminders: Reminders = field(default_factory=Reminders)  # a workflow's own value wins
    timers: TimerSettings = field(default_factory=TimerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)  # storage options
    board: BoardSettings = field(default_factory=BoardSettings)  # the overdue board
    photos: PhotoSettings = field(default_factory=PhotoSettings)  # patrol photo uploads
    source: Path | None = None

    def __post_init__(self) -> None:
        """Plain mappings given for a block in code are read like the file's blocks."""
        reader = NodeReader("<settings>")
        for name, read in _BLOCKS.items():
            value = getattr(self, name)
            if isinstance(value, Mapping):
                object.__setattr__(self, name, read(reader, from_plain(dict(value))))
        if reader.diagnostics:
            raise _error(None, reader.diagnostics)


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] = os.environ
) -> Settings:
    """Defaults ← settings file ← environment; a bad file raises :class:`ConfigError`."""
    explicit = path if path is not None else (env.get(ENV_CONFIG) or None)
    file = Path(explicit) if explicit is not None else DEFAULT_CONFIG_FILE
    values: dict[str, Any] = {}
    if file.exists() or explicit is not None:
        values = _read_file(file)
        values["source"] = file
    url = env.get(ENV_DATABASE_URL)
    if url:
        values["database_url"] = url
    return Settings(**values)


def _read_file(file: Path) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: settings file not found", file=str(file)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read settings file: {exc}", file=str(file)) from None
    if not any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
        return {}
    root, diagnostics = parse_yaml(text, str(file))
    reader = NodeReader(str(file), diagnostics)
    if root is None or diagnostics:
        raise _error(file, reader.diagnostics)
    if not isinstance(root, MapNode):
        reader.report(root, "", "the settings file must be a mapping of keys")
        raise _error(file, reader.diagnostics)
    reader.keys(root, "", allowed=sorted([*_TOP, *_BLOCKS]))
    values: dict[str, Any] = {}
    for key, read_top in _TOP.items():
        node = root.get(key)
        if node is not None:
            value = read_top(reader, node, key)
            if value is not None:
                values[key] = value
    for key, read_block in _BLOCKS.items():
        values[key] = read_block(reader, root.get(key))
    if reader.diagnostics:
        raise _error(file, reader.diagnostics)
    return values


def _error(file: Path | None, diagnostics: list[Diagnostic]) -> ConfigError:
    ordered = sorted(set(diagnostics))
    problems = [str(d) for d in ordered]
    return ConfigError(
        "\n".join(problems),
        file=str(file) if file is not None else None,
        problems=problems,
        diagnostics=[d.as_dict() for d in ordered],
    )


def _path(reader: NodeReader, node: Node, key: str) -> Path | None:
    text = reader.text(node, key, empty=False)
    return Path(text) if text is not None else None


def _optional_path(reader: NodeReader, node: Node, key: str) -> Path | None:
    return None if is_null(node) else _path(reader, node, key)


_TOP: dict[str, Callable[[NodeReader, Node, str], Any]] = {
    "database_url": lambda reader, node, key: reader.text(node, key, empty=False),
    "workflows_dir": _path,
    "data_dir": _path,
    "timezone": lambda reader, node, key: reader.timezone(node, key),
    "grid_file": _optional_path,
}
_BLOCKS: dict[str, Callable[[NodeReader, Node | None], Any]] = {
    "database": read_database,
    "notifications": read_notifications,
    "api": read_api,
    "serve": read_serve,
    "reminders": read_reminders,
    "timers": read_timers,
    "board": read_board,
    "photos": read_photos,
}
