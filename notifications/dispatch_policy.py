"""How the dispatcher retries and how hard it pushes: ``notifications.retry`` and ``.dispatch``.

.. code-block:: yaml

    notifications:
      retry: {max_attempts: 5, backoff_seconds: 30, backoff_max_seconds: 3600, lease_seconds: 300}
      dispatch:
        concurrency: 4                      # sends in flight at once, per channel
        channel_concurrency: {webhook: 8}   # per-channel overrides (configured channels only)

Every problem of the ``dispatch`` block is reported at once in one
:class:`~engine.errors.ConfigError`, each line naming its key.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import ConfigError
from engine.yamlkit.diagnostics import did_you_mean

__all__ = ["DispatchPolicy"]


@dataclass(frozen=True, kw_only=True)
class DispatchPolicy:
    max_attempts: int = 5
    backoff_seconds: float = 30.0
    backoff_max_seconds: float = 3600.0
    lease_seconds: float = 300.0
    batch: int = 50
    concurrency: int = 4  # sends in flight at once, per channel (DispatchLoop)
    channel_concurrency: Mapping[str, int] = field(default_factory=dict, hash=False)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> DispatchPolicy:
        """The ``retry`` and ``dispatch`` blocks of the ``notifications`` settings.

        Raises :class:`ConfigError` naming every bad key of ``dispatch``.
        """
        retry = settings.get("retry") or {}
        channels = settings.get("channels") or {"console": {}}
        return cls(
            max_attempts=int(retry.get("max_attempts", cls.max_attempts)),
            backoff_seconds=float(retry.get("backoff_seconds", cls.backoff_seconds)),
            backoff_max_seconds=float(retry.get("backoff_max_seconds", cls.backoff_max_seconds)),
            lease_seconds=float(retry.get("lease_seconds", cls.lease_seconds)),
            **_dispatch_block(settings.get("dispatch"), list(channels)),
        )

    def lane_size(self, channel: str) -> int:
        """How many sends *channel* may have in flight at once."""
        return self.channel_concurrency.get(channel, self.concurrency)

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Exponential backoff with jitter: a random delay in [50%, 100%] of the step."""
        growth: float = 2.0 ** max(attempts - 1, 0)
        step = min(self.backoff_max_seconds, self.backoff_seconds * growth)
        return step * (0.5 + rng.random() / 2)


def _dispatch_block(raw: Any, channels: list[str]) -> dict[str, Any]:
    where = "notifications.dispatch"
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping (concurrency, channel_concurrency)")
    problems: list[str] = []
    out: dict[str, Any] = {}
    allowed = ("channel_concurrency", "concurrency")
    for key, value in raw.items():
        if key == "concurrency":
            if _positive(value):
                out["concurrency"] = value
            else:
                problems.append(f"{where}.concurrency: expected a positive whole number")
        elif key == "channel_concurrency":
            if not isinstance(value, Mapping):
                problems.append(f"{where}.channel_concurrency: expected a mapping of channel names")
                continue
            sizes: dict[str, int] = {}
            for name, size in value.items():
                if name not in channels:
                    problems.append(
                        f"{where}.channel_concurrency.{name}: not a configured channel"
                        f"{did_you_mean(str(name), channels)} (configured: {', '.join(channels)})"
                    )
                elif not _positive(size):
                    problems.append(
                        f"{where}.channel_concurrency.{name}: expected a positive whole number"
                    )
                else:
                    sizes[str(name)] = size
            out["channel_concurrency"] = sizes
        else:
            problems.append(
                f"{where}.{key}: unknown key{did_you_mean(str(key), allowed)} "
                f"(allowed: {', '.join(allowed)})"
            )
    if problems:
        raise ConfigError("\n".join(problems), problems=problems)
    return out


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
