"""Guard expressions: what they compute, and every escape attempt refused at compile time."""

from __future__ import annotations

import pytest

from engine.definitions.expressions import ExpressionError, compile_guard


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("area_m2 >= 3333.35", {"area_m2": 4000}, True),
        ("area_m2 >= 3333.35", {"area_m2": 100}, False),
        (
            "land_type == '永久基本农田' and area_m2 >= 3333.35",
            {"land_type": "一般耕地", "area_m2": 9e9},
            False,
        ),
        ("complex or key_area", {"complex": False, "key_area": True}, True),
        ("not complex", {"complex": False}, True),
        ("kind in ['违法建房', '大棚房']", {"kind": "大棚房"}, True),
        ("kind not in ('违法建房',)", {"kind": "大棚房"}, True),
        ("len(photos) >= 2", {"photos": ["a", "b"]}, True),
        ("max(a, b) - min(a, b) == 3", {"a": 5, "b": 2}, True),
        ("area_m2 / 666.67 >= 5", {"area_m2": 3400}, True),
        ("1 < x < 3", {"x": 2}, True),
        ("1 < x < 3", {"x": 3}, False),
        ("x if flag else y", {"flag": False, "x": 0, "y": 1}, True),
        ("true and not false", {}, True),
        # Missing optional values are None; mismatched types make the guard false.
        ("area_m2 >= 10", {}, False),
        ("area_m2 + 'x' == 1", {"area_m2": 2}, False),
        ("x / 0 == 1", {"x": 1}, False),
        ("note == null", {}, True),
    ],
)
def test_guard_values(text: str, env: dict[str, object], expected: bool) -> None:
    assert compile_guard(text)(env) is expected


def test_guard_names_are_the_free_variables() -> None:
    guard = compile_guard("land_type == '其他' and area_m2 > max(1, limit) and true")
    assert guard.names == {"land_type", "area_m2", "limit"}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("().__class__", "attribute access"),
        ("x.__class__.__mro__", "attribute access"),
        ("''.join(['a'])", "only these functions"),
        ("'{0.__class__}'.format(x)", "only these functions"),
        ("__import__('os')", "only these functions"),
        ("x == __builtins__", "names starting with '_'"),
        ("eval('1')", "only these functions"),
        ("getattr(x, 'y')", "only these functions"),
        ("open('/etc/passwd')", "only these functions"),
        ("(lambda: 1)()", "only these functions"),
        ("[c for c in x]", "ListComp is not allowed"),
        ("x[0]", "Subscript is not allowed"),
        ("2 ** 10000", "Pow is not allowed"),
        ("len(x, key=1)", "keyword arguments"),
        ("'%100000000d' % 1 == ''", "format width or precision above 100"),
        ("'%.100000000f' % 1 == ''", "format width or precision above 100"),
        ("'%*d' % (10, 1) == ''", "format width or precision above 100"),
        ("x := 1", "syntax error"),
        ("import os", "syntax error"),
        ("", "non-empty"),
    ],
)
def test_escape_attempts_do_not_compile(text: str, fragment: str) -> None:
    with pytest.raises(ExpressionError, match=fragment):
        compile_guard(text)


def test_string_repetition_is_capped() -> None:
    assert compile_guard("'a' * 100 == s")({"s": "a" * 100}) is True
    # Building a huge string is refused at run time: the guard is false, memory is safe.
    assert compile_guard("len('a' * n) > 0")({"n": 10**9}) is False


def test_formatting_is_bounded() -> None:
    assert compile_guard("'%05.1f' % area == '012.5'")({"area": 12.5}) is True
    # A format string from a field is checked at run time: the guard is false.
    assert compile_guard("pattern % 1 == ''")({"pattern": "%100000000d"}) is False


def test_a_mismatched_comparison_is_false_but_the_rest_still_counts() -> None:
    guard = compile_guard("area_m2 < 1 or key_area")
    assert guard({"key_area": True}) is True
    assert guard({"key_area": False}) is False
    assert compile_guard("not (area_m2 > 5)")({}) is True
