"""The blocks of the settings file, each a frozen dataclass read by the one node reader.

.. code-block:: yaml

    database: {sqlite_synchronous: full}        # full | normal | extra
    reminders: {office_hours: "08:30-18:00"}
    timers:
      retry: {max_attempts: 5, backoff_seconds: 60, backoff_max_seconds: 3600}
    notifications:
      base_url: https://gengbao.example.org
      channels: {console: {}}                   # docs/notifications.md
      retry: {max_attempts: 5, backoff_seconds: 30, backoff_max_seconds: 3600, lease_seconds: 300}
      dispatch: {concurrency: 4, channel_concurrency: {console: 2}}
    api:
      max_body_bytes: 1048576                   # request bodies larger than this get 413
      metrics_roles: [district.office]          # who may read /metrics (LEVEL.ROLE anywhere)
      admin_roles: [district.office]            # who may move cases between workflow versions
    board: {due_soon: 24h}                      # "due soon" for a state without reminders
    photos: {max_bytes: 10485760}               # patrol photos: larger uploads are refused
    serve:
      host: 127.0.0.1
      port: 8000
      sweep_seconds: 5                          # the longest the timer loop sleeps
      dispatch_seconds: 5                       # the dispatcher's fallback poll
      shutdown_seconds: 30                      # how long SIGTERM waits for requests in flight

Each ``read_*`` function takes the block's node (``None`` when absent; an
empty ``key:`` means the defaults too) and reports every problem to the
reader, returning the defaults for what it could not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from engine.definitions.office_hours import Reminders, parse_office_hours
from engine.grid.parse import LEVELS, ROLE_NAME
from engine.timers.retry import RetryPolicy, read_retry_policy
from engine.yamlkit import MapNode, Node, NodeReader, ScalarNode, did_you_mean, is_null
from notifications.dispatch_policy import DispatchPolicy, read_dispatch_policy

if TYPE_CHECKING:
    from engine.settings import Settings

__all__ = [
    "SQLITE_SYNCHRONOUS",
    "ApiOptions",
    "BoardSettings",
    "DatabaseSettings",
    "NotificationSettings",
    "PhotoSettings",
    "ServeOptions",
    "TimerSettings",
    "read_api",
    "read_board",
    "read_database",
    "read_notifications",
    "read_photos",
    "read_reminders",
    "read_serve",
    "read_timers",
]

MIB = 1024 * 1024
DAY_SECONDS = 86400
SQLITE_SYNCHRONOUS = ("full", "normal", "extra")  # engine/store/db.py's PRAGMA synchronous levels


@dataclass(frozen=True, kw_only=True)
class DatabaseSettings:
    """The ``database`` block: storage options beside ``database_url``."""

    sqlite_synchronous: str = "full"


@dataclass(frozen=True, kw_only=True)
class BoardSettings:
    """The ``board`` block: the overdue board (超期预警).  A case is *due soon* when its
    deadline falls within its state's reminder window (the longest ``remind``), or
    within ``due_soon`` when the state declares no reminder."""

    due_soon_seconds: int = DAY_SECONDS


@dataclass(frozen=True, kw_only=True)
class PhotoSettings:
    """The ``photos`` block: patrol photos, stored under ``data_dir/photos``."""

    max_bytes: int = 10 * MIB


@dataclass(frozen=True, kw_only=True)
class TimerSettings:
    """The ``timers`` block: how failed timers are retried."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True, kw_only=True)
class NotificationSettings:
    """The ``notifications`` block; ``channels`` is checked by building every channel."""

    channels: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), compare=True, hash=False
    )
    base_url: str | None = None
    policy: DispatchPolicy = field(default_factory=DispatchPolicy, hash=False)


@dataclass(frozen=True)
class ApiOptions:
    """The ``api`` block."""

    max_body_bytes: int = MIB
    # /metrics tells the case counts of the whole installation: operators only.
    metrics_roles: tuple[str, ...] = ("district.office",)
    # Who administers workflows over HTTP (moving cases between versions), for the
    # cases of the units where they hold the role and below.
    admin_roles: tuple[str, ...] = ("district.office",)

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiOptions:
        return settings.api


@dataclass(frozen=True)
class ServeOptions:
    """The ``serve`` block: ``gengbao serve``."""

    host: str = "127.0.0.1"
    port: int = 8000
    sweep_seconds: float = 5.0
    dispatch_seconds: float = 5.0
    shutdown_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ServeOptions:
        return settings.serve


def _block(
    reader: NodeReader, node: Node | None, path: str, allowed: tuple[str, ...]
) -> MapNode | None:
    """The block's mapping; ``None`` when absent, empty or not a mapping (reported)."""
    if is_null(node):
        return None
    return reader.mapping(node, path, allowed=allowed)


def read_database(reader: NodeReader, node: Node | None) -> DatabaseSettings:
    block = _block(reader, node, "database", ("sqlite_synchronous",))
    if block is None:
        return DatabaseSettings()
    level_node = block.get("sqlite_synchronous")
    if isinstance(level_node, ScalarNode) and isinstance(level_node.value, str):
        level_node = ScalarNode(
            level_node.line, level_node.column, level_node.value.lower(), level_node.tag
        )
    level = reader.choice(level_node, "database.sqlite_synchronous", SQLITE_SYNCHRONOUS)
    return DatabaseSettings(sqlite_synchronous=level or "full")


def read_reminders(reader: NodeReader, node: Node | None) -> Reminders:
    block = _block(reader, node, "reminders", ("office_hours",))
    hours = block.get("office_hours") if block is not None else None
    if hours is None or is_null(hours):
        return Reminders()
    try:
        return Reminders(office_hours=parse_office_hours(getattr(hours, "value", None)))
    except ValueError as exc:
        reader.report(hours, "reminders.office_hours", str(exc))
        return Reminders()


def read_board(reader: NodeReader, node: Node | None) -> BoardSettings:
    block = _block(reader, node, "board", ("due_soon",))
    if block is None:
        return BoardSettings()
    node = block.get("due_soon")
    span = reader.duration(node, "board.due_soon")
    if node is None or span is None:
        return BoardSettings()
    if span.kind != "exact":
        reader.report(node, "board.due_soon", "an exact span, e.g. 24h (not working days)")
        return BoardSettings()
    return BoardSettings(due_soon_seconds=span.seconds)


def read_photos(reader: NodeReader, node: Node | None) -> PhotoSettings:
    block = _block(reader, node, "photos", ("max_bytes",))
    if block is None:
        return PhotoSettings()
    size = reader.integer(block.get("max_bytes"), "photos.max_bytes", min=1)
    return PhotoSettings(max_bytes=size) if size is not None else PhotoSettings()


def read_timers(reader: NodeReader, node: Node | None) -> TimerSettings:
    block = _block(reader, node, "timers", ("retry",))
    if block is None:
        return TimerSettings()
    return TimerSettings(retry=read_retry_policy(reader, block.get("retry"), "timers.retry"))


_NOTIFICATION_KEYS = ("base_url", "channels", "dispatch", "retry")


def read_notifications(reader: NodeReader, node: Node | None) -> NotificationSettings:
    block = _block(reader, node, "notifications", _NOTIFICATION_KEYS)
    if block is None:
        return NotificationSettings()
    base_url = reader.text(block.get("base_url"), "notifications.base_url", empty=False)
    channels_node = block.get("channels")
    if channels_node is not None:
        from notifications.channels import read_channels  # only when there are channels

        read_channels(reader, channels_node)  # built to check them; the App builds its own
    channels = channels_node.plain() if isinstance(channels_node, MapNode) else {}
    policy = read_dispatch_policy(
        reader, block.get("retry"), block.get("dispatch"), list(channels) or ["console"]
    )
    return NotificationSettings(
        channels=MappingProxyType(channels), base_url=base_url, policy=policy
    )


def read_api(reader: NodeReader, node: Node | None) -> ApiOptions:
    block = _block(reader, node, "api", ("max_body_bytes", "metrics_roles", "admin_roles"))
    if block is None:
        return ApiOptions()
    values: dict[str, Any] = {}
    size = reader.integer(block.get("max_body_bytes"), "api.max_body_bytes", min=1)
    if size is not None:
        values["max_body_bytes"] = size
    for key in ("metrics_roles", "admin_roles"):
        roles_node = block.get(key)
        if roles_node is not None:
            roles = reader.list_of(roles_node, f"api.{key}", lambda n, p: _role(reader, n, p))
            values[key] = tuple(roles)
    return ApiOptions(**values)


def _role(reader: NodeReader, node: Node, path: str) -> str | None:
    """``LEVEL.ROLE`` as the grid names roles, e.g. ``district.office``."""
    value = reader.text(node, path)
    if value is None:
        return None
    level, dot, role = value.partition(".")
    if not dot or not role:
        reader.report(node, path, f"bad role {value!r}: write LEVEL.ROLE, e.g. 'town.leader'")
        return None
    if level not in LEVELS:
        reader.report(
            node,
            path,
            f"unknown level {level!r}{did_you_mean(level, LEVELS)} (levels: {', '.join(LEVELS)})",
        )
        return None
    if not ROLE_NAME.match(role):
        reader.report(node, path, f"bad role name {role!r}: use lower-case letters, digits, '_'")
        return None
    return value


_SERVE_SECONDS = ("sweep_seconds", "dispatch_seconds", "shutdown_seconds")


def read_serve(reader: NodeReader, node: Node | None) -> ServeOptions:
    block = _block(reader, node, "serve", ("host", "port", *_SERVE_SECONDS))
    if block is None:
        return ServeOptions()
    values: dict[str, Any] = {}
    host = reader.text(block.get("host"), "serve.host", empty=False)
    if host is not None:
        values["host"] = host
    port = reader.integer(block.get("port"), "serve.port", min=1, max=65535)
    if port is not None:
        values["port"] = port
    for key in _SERVE_SECONDS:
        seconds = reader.number(block.get(key), f"serve.{key}", positive=True, below=DAY_SECONDS)
        if seconds is not None:
            values[key] = seconds
    return ServeOptions(**values)
