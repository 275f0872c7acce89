"""A bounded wait on a condition that other threads or processes make true."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

__all__ = ["wait_for"]


def wait_for(what: str, done: Callable[[], bool], timeout: float = 30.0) -> None:
    """Return as soon as *done()*; fail after *timeout* seconds (a bound, not a duration)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(0.02)
