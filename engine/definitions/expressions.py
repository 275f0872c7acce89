"""Guard expressions: a small allow-listed evaluator over an AST, never ``eval``.

Admins write Python-like conditions (``area_m2 >= 3333.35 and land_type ==
'永久基本农田'``).  We parse with :func:`ast.parse`, reject every node kind not
on the allow-list (attribute access, subscripts, lambdas, comprehensions, calls
except a few pure built-ins), and interpret the tree ourselves.  Names resolve
to case fields and payload values; a missing optional value is ``None``.
A comparison whose operands do not fit (``null < 3``, ``'a' + 1 == 2``) is
false rather than an error; the rest of the guard still counts, so
``area_m2 < 1 or key_area`` is true for a key area with no area recorded.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import ExpressionError

__all__ = ["ExpressionError", "Guard", "compile_guard"]

MAX_STRING = 10_000
MAX_FORMAT_WIDTH = 100  # widths and precisions in ``'%5.2f' % x``; ``*`` is refused
_FORMAT_SPEC = re.compile(r"%[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?")
_FUNCTIONS: dict[str, Callable[..., Any]] = {"len": len, "abs": abs, "min": min, "max": max}
_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_CONSTANTS = {"true": True, "false": False, "null": None, "none": None}


class _Undecidable(Exception):
    """Evaluation hit mismatched types: the guard is false."""


@dataclass(frozen=True)
class Guard:
    text: str
    names: frozenset[str]
    _tree: ast.Expression

    def __call__(self, env: Mapping[str, Any]) -> bool:
        try:
            return bool(_eval(self._tree.body, env))
        except _Undecidable:
            return False


def compile_guard(text: str) -> Guard:
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("a guard must be a non-empty expression")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.msg}", max((exc.offset or 1) - 1, 0)) from exc
    names: set[str] = set()
    for node in ast.walk(tree):
        _check(node, names)
    return Guard(text.strip(), frozenset(names), tree)


def _check(node: ast.AST, names: set[str]) -> None:
    offset = getattr(node, "col_offset", 0)
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise ExpressionError(f"names starting with '_' are not allowed: {node.id!r}", offset)
        if node.id not in _FUNCTIONS and node.id not in _CONSTANTS:
            names.add(node.id)
        return
    if isinstance(node, ast.Attribute):
        raise ExpressionError(
            f"attribute access ('.{node.attr}') is not allowed in a guard", node.end_col_offset or 0
        )
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            raise ExpressionError(
                "only these functions may be called: " + ", ".join(sorted(_FUNCTIONS)), offset
            )
        if node.keywords:
            raise ExpressionError("keyword arguments are not allowed", offset)
        return
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, (str, int, float, bool, type(None))):
            raise ExpressionError(f"constant {node.value!r} is not allowed", offset)
        return
    if isinstance(node, ast.BinOp) and type(node.op) not in _BINOPS:
        raise ExpressionError(f"operator {type(node.op).__name__} is not allowed", offset)
    if (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Mod)
        and isinstance(node.left, ast.Constant)
        and isinstance(node.left.value, str)
        and _too_wide(node.left.value)
    ):
        raise ExpressionError(
            f"a format width or precision above {MAX_FORMAT_WIDTH} (or '*') is not allowed",
            node.left.col_offset,
        )
    allowed = (
        ast.Expression,
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.UnaryOp,
        ast.Not,
        ast.USub,
        ast.UAdd,
        ast.BinOp,
        ast.Compare,
        ast.List,
        ast.Tuple,
        ast.IfExp,
        ast.Load,
        *_BINOPS,
        *_CMPOPS,
    )
    if not isinstance(node, allowed):
        raise ExpressionError(f"{type(node).__name__} is not allowed in a guard", offset)


def _eval(node: ast.expr, env: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id] if node.id not in env else env[node.id]
        return env.get(node.id)
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_eval(v, env) for v in node.values)
        return any(_eval(v, env) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, env)
        if isinstance(node.op, ast.Not):
            return not operand
        return _guarded(operator.neg if isinstance(node.op, ast.USub) else operator.pos, operand)
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, env), _eval(node.right, env)
        if isinstance(node.op, ast.Mult) and _too_long(left, right):
            raise _Undecidable
        if isinstance(node.op, ast.Mod) and isinstance(left, str) and _too_wide(left):
            raise _Undecidable  # a format string from a field: never build a huge text
        result = _guarded(_BINOPS[type(node.op)], left, right)
        if isinstance(result, (str, list, tuple)) and len(result) > MAX_STRING:
            raise _Undecidable
        return result
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        try:
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = _eval(comparator, env)
                if not _guarded(_CMPOPS[type(op)], left, right):
                    return False
                left = right
        except _Undecidable:
            return False  # this comparison is false; the rest of the guard still counts
        return True
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, env) for e in node.elts]
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, env) else node.orelse, env)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        args = [_eval(a, env) for a in node.args]
        return _guarded(_FUNCTIONS[node.func.id], *args)
    raise _Undecidable  # unreachable for checked trees


def _too_long(left: Any, right: Any) -> bool:
    for seq, count in ((left, right), (right, left)):
        if (
            isinstance(seq, (str, list))
            and isinstance(count, int)
            and len(seq) * count > MAX_STRING
        ):
            return True
    return False


def _too_wide(text: str) -> bool:
    """Whether a %-format string asks for a width or precision beyond the bound."""
    for match in _FORMAT_SPEC.finditer(text):
        for part in match.groups():
            if part == "*" or (part and int(part) > MAX_FORMAT_WIDTH):
                return True
    return False


def _guarded(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, ArithmeticError):
        raise _Undecidable from None
