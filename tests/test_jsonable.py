"""``jsonable`` gives back what a JSON round trip gives back, for any value a payload may hold."""

from __future__ import annotations

import json
from collections import OrderedDict
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.cases.records import _round_trip, jsonable

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and ±infinity too: compared as JSON text below
    | st.text()
    | st.datetimes(timezones=st.just(UTC))
    | st.dates()
    | st.decimals(allow_nan=False)
)
KEYS = st.text() | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(KEYS, inner, max_size=4)
        | st.dictionaries(st.text(), inner, max_size=4)
    ),
    max_leaves=20,
)


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@given(VALUES)
def test_the_same_as_the_round_trip(value: Any) -> None:
    fast, slow = jsonable(value), _round_trip(value)
    assert _text(fast) == _text(slow)
    assert type(fast) is type(slow)


def test_what_the_round_trip_changes_it_changes_too() -> None:
    moment = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
    value = {
        "at": moment,
        "day": date(2026, 12, 4),
        "pair": (1, "two"),
        "by_number": {1: "a", False: "b", None: "c"},
        "money": Decimal("1.50"),
        "ordered": OrderedDict(b=1, a=2),
        "frozen": MappingProxyType({"k": "v"}),
    }
    assert jsonable(value) == {
        "at": "2026-12-04 02:00:00+00:00",
        "day": "2026-12-04",
        "pair": [1, "two"],
        "by_number": {"1": "a", "false": "b", "null": "c"},
        "money": "1.50",
        "ordered": {"b": 1, "a": 2},
        "frozen": "{'k': 'v'}",
    }


def test_the_copy_shares_nothing_with_the_value() -> None:
    value = {"list": [1, {"x": 2}]}
    copy = jsonable(value)
    value["list"][1]["x"] = 3  # type: ignore[index]
    assert copy == {"list": [1, {"x": 2}]}
