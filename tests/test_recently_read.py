"""``RecentlyRead``: a value is reused for its window, then read again; failures are not kept."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from notifications.recently_read import RecentlyRead


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def reader(values: list[str]) -> tuple[list[int], Callable[[], str]]:
    reads = [0]

    def read() -> str:
        reads[0] += 1
        return values[reads[0] - 1]

    return reads, read


def test_a_value_is_reused_within_its_window_and_read_again_after() -> None:
    ticks = Ticks()
    recent: RecentlyRead[int, str] = RecentlyRead(1.0, clock=ticks)
    reads, read = reader(["first", "second"])
    assert recent.get(7, read) == "first"
    ticks.now += 0.999
    assert recent.get(7, read) == "first"
    ticks.now += 0.001
    assert recent.get(7, read) == "second"
    assert reads == [2]


def test_a_read_that_raises_is_not_kept() -> None:
    recent: RecentlyRead[int, str] = RecentlyRead(60.0, clock=Ticks())

    def broken() -> str:
        raise LookupError("no such notification")

    with pytest.raises(LookupError):
        recent.get(1, broken)
    assert recent.get(1, lambda: "read again") == "read again"


def test_past_the_limit_the_oldest_key_goes_first() -> None:
    recent: RecentlyRead[int, str] = RecentlyRead(60.0, clock=Ticks(), limit=2)
    for key in (1, 2, 3):
        recent.get(key, f"v{key}".strip)
    assert recent.get(3, lambda: "again") == "v3"
    assert recent.get(2, lambda: "again") == "v2"
    assert recent.get(1, lambda: "again") == "again"
