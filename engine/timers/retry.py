"""When a timer whose effects raised is tried again: exponential backoff, then give up.

A failed timer keeps ``attempts``, ``last_error`` and ``next_attempt_at``; the
sweep fires it again once ``next_attempt_at`` has passed.  After
``max_attempts`` failures ``next_attempt_at`` is NULL and the timer stays
``failed`` until ``gengbao timers retry ID`` re-arms it.  No jitter (unlike
notification deliveries): a timer fails because of its own data or code, not
a busy endpoint, so there is no crowd of retries to spread out, and the next
attempt shown by ``timers list`` is exactly when it happens.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from engine.yamlkit import MapNode, Node, NodeReader, is_null

__all__ = ["RetryPolicy", "read_retry_policy"]


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_seconds: float = 60.0
    backoff_max_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.backoff_seconds <= 0 or self.backoff_max_seconds < self.backoff_seconds:
            raise ValueError(
                "backoff_seconds must be positive and at most backoff_max_seconds "
                f"(got {self.backoff_seconds} and {self.backoff_max_seconds})"
            )

    def next_attempt(self, attempts: int, now: dt.datetime) -> dt.datetime | None:
        """After the *attempts*-th failure at *now*: when to try again (None: give up)."""
        if attempts >= self.max_attempts:
            return None
        step = min(self.backoff_max_seconds, self.backoff_seconds * 2.0 ** max(attempts - 1, 0))
        return now + dt.timedelta(seconds=step)


_KEYS = ("max_attempts", "backoff_seconds", "backoff_max_seconds")


def read_retry_policy(reader: NodeReader, node: Node | None, path: str) -> RetryPolicy:
    """The ``timers.retry`` mapping (missing keys: the defaults); problems go to *reader*."""
    block = None if is_null(node) else reader.mapping(node, path, allowed=_KEYS)
    if not isinstance(block, MapNode):
        return RetryPolicy()
    values: dict[str, Any] = {}
    attempts = reader.integer(block.get("max_attempts"), f"{path}.max_attempts", min=1)
    if attempts is not None:
        values["max_attempts"] = attempts
    for key in _KEYS[1:]:
        seconds = reader.number(block.get(key), f"{path}.{key}", positive=True)
        if seconds is not None:
            values[key] = seconds
    low = values.get("backoff_seconds", RetryPolicy.backoff_seconds)
    high = values.get("backoff_max_seconds", RetryPolicy.backoff_max_seconds)
    if high < low:
        at = block.get("backoff_max_seconds") or block.get("backoff_seconds") or block
        reader.report(
            at, path, f"backoff_max_seconds ({high:g}) is less than backoff_seconds ({low:g})"
        )
        return RetryPolicy()
    return RetryPolicy(**values)
