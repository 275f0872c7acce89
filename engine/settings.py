"""Settings: ``config/gengbao.yaml`` (or ``$GENGBAO_CONFIG``), then the environment.

Precedence, lowest first: built-in defaults, the settings file, environment
variables.  The file is the explicit *path* argument if given, else
``$GENGBAO_CONFIG``, else ``config/gengbao.yaml`` in the current directory
(optional: a missing default file means defaults).  ``$GENGBAO_DATABASE_URL``
overrides ``database_url``.  Relative paths are kept relative to the current
directory, like the default file itself.

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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.definitions.office_hours import Reminders, parse_office_hours
from engine.errors import ConfigError
from engine.timers.retry import RetryPolicy
from engine.yamlkit.diagnostics import did_you_mean
from engine.yamlkit.nodes import MapNode, Node, ScalarNode, parse_yaml

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_DATABASE_URL",
    "SQLITE_SYNCHRONOUS",
    "DatabaseSettings",
    "Settings",
    "load_settings",
]

DEFAULT_CONFIG_FILE = Path("config/gengbao.yaml")
DEFAULT_DATABASE_URL = "sqlite:///var/gengbao.db"
ENV_CONFIG = "GENGBAO_CONFIG"
ENV_DATABASE_URL = "GENGBAO_DATABASE_URL"
SQLITE_SYNCHRONOUS = ("full", "normal", "extra")  # engine/db.py's PRAGMA synchronous levels


@dataclass(frozen=True, kw_only=True)
class DatabaseSettings:
    """The ``database`` block: storage options beside ``database_url``."""

    sqlite_synchronous: str = "full"


class _At(ValueError):
    """A problem at a node inside a value (a key of a block), not at the value itself."""

    def __init__(self, node: Node, path: str, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.path = path


@dataclass(frozen=True)
class Settings:
    """Resolved settings; ``source`` is the file they came from, if any."""

    database_url: str = DEFAULT_DATABASE_URL
    workflows_dir: Path = Path("workflows")
    timezone: str = "Asia/Shanghai"
    grid_file: Path | None = None
    notifications: dict[str, Any] = field(default_factory=dict, hash=False)
    api: dict[str, Any] = field(default_factory=dict, hash=False)  # read by engine/api
    serve: dict[str, Any] = field(default_factory=dict, hash=False)  # read by gengbao serve
    reminders: Reminders = field(default_factory=Reminders)  # a workflow's own value wins
    timers: dict[str, Any] = field(default_factory=dict, hash=False)  # retry: RetryPolicy
    database: DatabaseSettings = field(default_factory=DatabaseSettings)  # storage options
    source: Path | None = None


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
    if diagnostics:
        raise _error(file, [str(d) for d in diagnostics])
    if not isinstance(root, MapNode):
        line, col = (root.line, root.column) if root is not None else (1, 1)
        raise _error(file, [f"{file}:{line}:{col}: the settings file must be a mapping of keys"])
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, (key_node, value_node) in root.entries.items():
        where = f"{file}:{value_node.line}:{value_node.column}"
        convert = _FIELDS.get(key)
        if convert is None:
            allowed = ", ".join(sorted(_FIELDS))
            hint = did_you_mean(key, _FIELDS)
            problems.append(
                f"{file}:{key_node.line}:{key_node.column}: unknown key {key!r}{hint} "
                f"(allowed: {allowed})"
            )
            continue
        try:
            values[key] = convert(value_node)
        except _At as exc:
            at = f"{file}:{exc.node.line}:{exc.node.column}"
            problems.append(f"{at}: {key}.{exc.path}: {exc}")
        except ValueError as exc:
            problems.append(f"{where}: {key}: {exc}")
    if problems:
        raise _error(file, problems)
    return values


def _error(file: Path, problems: list[str]) -> ConfigError:
    return ConfigError("\n".join(problems), file=str(file), problems=problems)


def _text(node: Node) -> str:
    if not isinstance(node, ScalarNode) or not isinstance(node.value, str) or not node.value:
        raise ValueError("expected non-empty text")
    return node.value


def _path(node: Node) -> Path:
    return Path(_text(node))


def _optional_path(node: Node) -> Path | None:
    if isinstance(node, ScalarNode) and node.value is None:
        return None
    return _path(node)


def _timezone(node: Node) -> str:
    name = _text(node)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (e.g. 'Asia/Shanghai')") from None
    return name


def _mapping(node: Node) -> dict[str, Any]:
    if isinstance(node, ScalarNode) and node.value is None:
        return {}
    if not isinstance(node, MapNode):
        raise ValueError("expected a mapping")
    return node.plain()


def _reminders(node: Node) -> Reminders:
    if isinstance(node, ScalarNode) and node.value is None:
        return Reminders()
    if not isinstance(node, MapNode):
        raise ValueError("expected a mapping, e.g. {office_hours: '08:30-18:00'}")
    for key, (key_node, _) in node.entries.items():
        if key != "office_hours":
            raise ValueError(
                f"unknown key {key!r} at line {key_node.line}{did_you_mean(key, ['office_hours'])} "
                "(allowed: office_hours)"
            )
    hours = node.get("office_hours")
    if hours is None or (isinstance(hours, ScalarNode) and hours.value is None):
        return Reminders()
    value = hours.value if isinstance(hours, ScalarNode) else None
    try:
        return Reminders(office_hours=parse_office_hours(value))
    except ValueError as exc:
        raise ValueError(f"office_hours (line {hours.line}): {exc}") from None


def _timers(node: Node) -> dict[str, Any]:
    values = _mapping(node)
    unknown = sorted(set(values) - {"retry"})
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (allowed: retry)")
    try:
        RetryPolicy.from_settings(values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"retry: {exc}") from None
    return values


def _database(node: Node) -> DatabaseSettings:
    if isinstance(node, ScalarNode) and node.value is None:
        return DatabaseSettings()
    if not isinstance(node, MapNode):
        raise ValueError("expected a mapping, e.g. {sqlite_synchronous: full}")
    allowed = ("sqlite_synchronous",)
    for key, (key_node, value_node) in node.entries.items():
        if key not in allowed:
            hint = did_you_mean(key, allowed)
            raise _At(key_node, key, f"unknown key{hint} (allowed: {', '.join(allowed)})")
        value = value_node.plain() if isinstance(value_node, ScalarNode) else None
        if not isinstance(value, str) or value.lower() not in SQLITE_SYNCHRONOUS:
            raise _At(
                value_node,
                key,
                f"expected one of {', '.join(SQLITE_SYNCHRONOUS)}, got {value_node.plain()!r}",
            )
    level = node.get("sqlite_synchronous")
    if level is None:
        return DatabaseSettings()
    return DatabaseSettings(sqlite_synchronous=str(level.plain()).lower())


_FIELDS: dict[str, Callable[[Node], Any]] = {
    "database_url": _text,
    "database": _database,
    "workflows_dir": _path,
    "timezone": _timezone,
    "grid_file": _optional_path,
    "notifications": _mapping,
    "api": _mapping,
    "serve": _mapping,
    "reminders": _reminders,
    "timers": _timers,
}
