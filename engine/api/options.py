"""Settings of the HTTP service: the ``api:`` and ``serve:`` blocks of the settings file.

.. code-block:: yaml

    api:
      max_body_bytes: 1048576   # request bodies larger than this get 413
      metrics_roles: [district.office]   # who may read /metrics (LEVEL.ROLE anywhere)
    serve:
      host: 127.0.0.1
      port: 8000
      sweep_seconds: 5          # how often the timer sweep runs
      dispatch_seconds: 5       # the dispatcher's fallback poll (a commit wakes it at once)
      shutdown_seconds: 30      # how long SIGTERM waits for requests in flight

Every problem is reported at once in one :class:`~engine.errors.ConfigError`,
each line naming its key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import ConfigError, GridError
from engine.grid import parse_role_ref
from engine.settings import Settings
from engine.yamlkit.diagnostics import did_you_mean

__all__ = ["ApiOptions", "ServeOptions"]

MIB = 1024 * 1024


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("expected a positive whole number")
    return value


def _port(value: Any) -> int:
    port = _positive_int(value)
    if port > 65535:
        raise ValueError("expected a port number from 1 to 65535")
    return port


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 86400:
        raise ValueError("expected a number of seconds, more than 0 and less than a day")
    return float(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected non-empty text")
    return value


def _read(
    block: str, values: Mapping[str, Any], fields: Mapping[str, Callable[[Any], Any]]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in values.items():
        convert = fields.get(key)
        if convert is None:
            allowed = ", ".join(sorted(fields))
            problems.append(
                f"{block}.{key}: unknown key{did_you_mean(str(key), fields)} (allowed: {allowed})"
            )
            continue
        try:
            out[key] = convert(value)
        except ValueError as exc:
            problems.append(f"{block}.{key}: {exc}")
    if problems:
        raise ConfigError("\n".join(problems), problems=problems)
    return out


def _role_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise ValueError("expected a list of roles written LEVEL.ROLE, e.g. [district.office]")
    for ref in value:
        try:
            parse_role_ref(ref)
        except GridError as exc:
            raise ValueError(str(exc)) from None
    return tuple(value)


@dataclass(frozen=True)
class ApiOptions:
    max_body_bytes: int = MIB
    # /metrics tells the case counts of the whole installation: operators only.
    metrics_roles: tuple[str, ...] = ("district.office",)

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiOptions:
        fields = {"max_body_bytes": _positive_int, "metrics_roles": _role_list}
        return cls(**_read("api", settings.api, fields))


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    sweep_seconds: float = 5.0
    dispatch_seconds: float = 5.0
    shutdown_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ServeOptions:
        fields: dict[str, Callable[[Any], Any]] = {
            "host": _text,
            "port": _port,
            "sweep_seconds": _seconds,
            "dispatch_seconds": _seconds,
            "shutdown_seconds": _seconds,
        }
        return cls(**_read("serve", settings.serve, fields))
