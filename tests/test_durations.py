"""Durations as administrators write them, in English and in Chinese."""

from __future__ import annotations

import pytest

from engine.yamlkit.durations import DurationError, parse_duration


@pytest.mark.parametrize(
    ("text", "kind", "amount"),
    [
        ("30m", "exact", 1800),
        ("30分钟", "exact", 1800),
        ("2h", "exact", 7200),
        ("2小时", "exact", 7200),
        ("2个小时", "exact", 7200),
        ("3d", "exact", 3 * 86400),
        ("3天", "exact", 3 * 86400),
        ("3 working days", "working_days", 3),
        ("3个工作日", "working_days", 3),
    ],
)
def test_durations(text: str, kind: str, amount: int) -> None:
    duration = parse_duration(text)
    assert (duration.kind, duration.amount) == (kind, amount)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.5h", "whole numbers only; write '90m' instead"),
        ("0.5天", "whole numbers only; write '720m' instead"),
        ("3 weeks", "also 30分钟, 2小时, 3天, 3个工作日"),
    ],
)
def test_unreadable_durations_say_how_to_write_them(text: str, message: str) -> None:
    with pytest.raises(DurationError, match=message):
        parse_duration(text)
