"""Reading one channel's settings: typed getters that gather problems with their key paths.

Each channel module has a ``from_settings(options)`` that asks for its keys
through :class:`Options`; every problem is recorded as
``notifications.channels.NAME.KEY: what is wrong`` instead of raised, so one
:class:`~engine.errors.ConfigError` can report all of them at once.  Keys
nobody asked for are unknown and reported with the allowed keys.  Values of
keys marked ``secret`` never appear in a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.yamlkit.diagnostics import did_you_mean

__all__ = ["DEFAULT_TIMEOUT", "Options"]

DEFAULT_TIMEOUT = 10.0


class Options:
    """The settings mapping of one channel, at key path *path*."""

    def __init__(self, path: str, raw: object, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        self._asked: set[str] = set()
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            self.problem("", f"expected a mapping of settings, got {_kind(raw)}")
            raw = {}
        self._raw: Mapping[str, Any] = raw

    # -- recording -------------------------------------------------------

    def problem(self, key: str, text: str) -> None:
        where = f"{self.path}.{key}" if key else self.path
        self.problems.append(f"{where}: {text}")

    def has(self, key: str) -> bool:
        self._asked.add(key)
        return self._raw.get(key) is not None

    def _get(self, key: str) -> Any:
        self._asked.add(key)
        return self._raw.get(key)

    def check_unknown(self) -> None:
        """Report every key that no getter asked for."""
        allowed = sorted(self._asked)
        for key in self._raw:
            if key not in self._asked:
                hint = did_you_mean(str(key), allowed)
                self.problem(
                    str(key), f"unknown key{hint} (allowed: {', '.join(allowed) or 'none'})"
                )

    # -- getters ---------------------------------------------------------

    def text(
        self,
        key: str,
        *,
        required: bool = False,
        default: str | None = None,
        secret: bool = False,
        empty: bool = False,
    ) -> str | None:
        value = self._get(key)
        if value is None:
            if required:
                self.problem(key, "required")
            return default
        if not isinstance(value, str) or not (empty or value.strip()):
            shown = "a secret" if secret else _kind(value)
            self.problem(key, f"expected non-empty text, got {shown}")
            return default
        return value

    def url(self, key: str, *, required: bool = False, secret: bool = False) -> str | None:
        value = self.text(key, required=required, secret=secret)
        if value is not None and not value.startswith(("http://", "https://")):
            shown = "" if secret else f" {value!r}"
            self.problem(key, f"expected an http:// or https:// URL, got{shown or ' other text'}")
            return None
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, str) or value not in choices:
            hint = did_you_mean(value, choices) if isinstance(value, str) else ""
            self.problem(key, f"expected one of {', '.join(choices)}, got {value!r}{hint}")
            return default
        return value

    def number(self, key: str, default: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            self.problem(key, f"expected a positive number of seconds, got {value!r}")
            return default
        return float(value)

    def timeout(self) -> float:
        return self.number("timeout", DEFAULT_TIMEOUT)

    def port(self, key: str) -> int | None:
        value = self._get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            self.problem(key, f"expected a port number 1-65535, got {value!r}")
            return None
        return value

    def text_mapping(self, key: str, *, secret: bool = False) -> dict[str, str]:
        value = self._get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(key, f"expected a mapping of names to text, got {_kind(value)}")
            return {}
        out: dict[str, str] = {}
        for name, item in value.items():
            if (
                not isinstance(name, str)
                or not isinstance(item, (str, int))
                or isinstance(item, bool)
            ):
                shown = "a secret" if secret else repr(item)
                self.problem(f"{key}.{name}", f"expected text, got {shown}")
                continue
            out[name] = str(item)
        return out

    def scalar(self, key: str) -> str | int | float | bool | None:
        value = self._get(key)
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        self.problem(key, f"expected a single value, got {_kind(value)}")
        return None


def _kind(value: object) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)
