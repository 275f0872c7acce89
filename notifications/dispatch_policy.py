"""How the dispatcher retries and how hard it pushes: ``notifications.retry`` and ``.dispatch``.

.. code-block:: yaml

    notifications:
      retry: {max_attempts: 5, backoff_seconds: 30, backoff_max_seconds: 3600, lease_seconds: 300}
      dispatch:
        concurrency: 4                      # sends in flight at once, per channel
        channel_concurrency: {webhook: 8}   # per-channel overrides (configured channels only)

Every problem of both blocks is reported at once in one
:class:`~engine.errors.ConfigError`, each line naming its key.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import ConfigError
from engine.yamlkit import MapNode, Node, NodeReader, describe, did_you_mean, from_plain, is_null

__all__ = ["DispatchPolicy", "read_dispatch_policy"]

RETRY = "notifications.retry"
DISPATCH = "notifications.dispatch"


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

        Raises :class:`ConfigError` naming every bad key.
        """
        reader = NodeReader("<settings>")
        node = from_plain(settings)
        assert isinstance(node, MapNode)
        channels = settings.get("channels") or {"console": {}}
        policy = read_dispatch_policy(
            reader, node.get("retry"), node.get("dispatch"), [str(name) for name in channels]
        )
        if reader.diagnostics:
            problems = [str(d) for d in reader.diagnostics]
            raise ConfigError("\n".join(problems), problems=problems)
        return policy

    def lane_size(self, channel: str) -> int:
        """How many sends *channel* may have in flight at once."""
        return self.channel_concurrency.get(channel, self.concurrency)

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Exponential backoff with jitter: a random delay in [50%, 100%] of the step."""
        growth: float = 2.0 ** max(attempts - 1, 0)
        step = min(self.backoff_max_seconds, self.backoff_seconds * growth)
        return step * (0.5 + rng.random() / 2)


_RETRY_KEYS = ("max_attempts", "backoff_seconds", "backoff_max_seconds", "lease_seconds")
_DISPATCH_KEYS = ("concurrency", "channel_concurrency")


def read_dispatch_policy(
    reader: NodeReader, retry: Node | None, dispatch: Node | None, channels: list[str]
) -> DispatchPolicy:
    """``notifications.retry`` and ``notifications.dispatch``; problems go to *reader*."""
    values: dict[str, Any] = {}
    block = None if is_null(retry) else reader.mapping(retry, RETRY, allowed=_RETRY_KEYS)
    if block is not None:
        attempts = reader.integer(block.get("max_attempts"), f"{RETRY}.max_attempts", min=1)
        if attempts is not None:
            values["max_attempts"] = attempts
        for key in _RETRY_KEYS[1:]:
            seconds = reader.number(block.get(key), f"{RETRY}.{key}", positive=True)
            if seconds is not None:
                values[key] = seconds
        low = values.get("backoff_seconds", DispatchPolicy.backoff_seconds)
        high = values.get("backoff_max_seconds", DispatchPolicy.backoff_max_seconds)
        if high < low:
            at = block.get("backoff_max_seconds") or block.get("backoff_seconds") or block
            reader.report(
                at,
                RETRY,
                f"backoff_max_seconds ({high:g}) is less than backoff_seconds ({low:g})",
            )
    block = (
        None if is_null(dispatch) else reader.mapping(dispatch, DISPATCH, allowed=_DISPATCH_KEYS)
    )
    if block is not None:
        concurrency = reader.integer(block.get("concurrency"), f"{DISPATCH}.concurrency", min=1)
        if concurrency is not None:
            values["concurrency"] = concurrency
        sizes = _channel_sizes(reader, block.get("channel_concurrency"), channels)
        if sizes is not None:
            values["channel_concurrency"] = sizes
    return DispatchPolicy(**values)


def _channel_sizes(
    reader: NodeReader, node: Node | None, channels: list[str]
) -> dict[str, int] | None:
    path = f"{DISPATCH}.channel_concurrency"
    if node is None:
        return None
    if not isinstance(node, MapNode):
        reader.report(node, path, f"expected a mapping of channel names, got {describe(node)}")
        return None
    sizes: dict[str, int] = {}
    for name, (key_node, value) in node.entries.items():
        if name not in channels:
            reader.report(
                key_node,
                f"{path}.{name}",
                f"not a configured channel{did_you_mean(name, channels)} "
                f"(configured: {', '.join(channels)})",
            )
            continue
        size = reader.integer(value, f"{path}.{name}", min=1)
        if size is not None:
            sizes[name] = size
    return sizes
