"""Does a template fit the notifications that use it?  A static walk of its Jinja2 AST.

Two questions, answered without rendering:

* :func:`unsafe_uses` — does the template reach for something the sandbox
  refuses at render time (an attribute starting with ``_``, ``self``,
  ``mro``, function and frame internals, a mutating method, ``**``, a
  ``format`` string that reaches for ``_`` attributes)?  Such a template
  would fail every delivery, so it never loads.
* :func:`unknown_names` — every ``a.b.c`` / ``a["b"]`` chain rooted at a
  context name is resolved against the :class:`Shape` of the context that
  one kind of notification gets (:func:`notifications.render.context_shape`):
  ``case.data.X`` must be a field of the workflow, ``event`` exists only for
  transitions, ``deadline`` only for reminders and escalations.

A reference is *guarded*, and so accepted even when the name is unknown, when
it is the operand of ``|default(...)`` (``|d``) or of the tests ``is
defined`` / ``is undefined``, or lies where a condition already established it:
the body of ``{% if X is defined %}`` or ``{% if X %}``, the right side of
``X is defined and X``, the ``else`` of ``{% if X is undefined %}``.  A branch
that needs a name its kind never has (``{% if event %}`` in a reminder) is
dead for that kind and is not checked.  This is how one template serves
several workflows: guard the fields only some of them have.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

from jinja2 import nodes
from jinja2 import sandbox as _sandbox

from engine.yamlkit.diagnostics import did_you_mean

__all__ = ["ANY", "NONE", "Finding", "Record", "Shape", "unknown_names", "unsafe_uses"]


@dataclass(frozen=True)
class _Leaf:
    label: str


ANY = _Leaf("any value")
"""A value the walk does not look into (text, numbers, lists)."""
NONE = _Leaf("None")
"""A name this kind of notification always has as None (``event`` in a reminder)."""


@dataclass(frozen=True)
class Record:
    """A mapping with known keys; *what* says what its keys are, for messages."""

    keys: Mapping[str, Shape]
    what: str = "key"


Shape = Record | _Leaf

# Python mapping methods a template may call (``case.data.items()``).
_MAPPING_METHODS = frozenset({"items", "keys", "values", "get"})
_MUTATING = frozenset(
    {
        "append",
        "extend",
        "insert",
        "pop",
        "popitem",
        "remove",
        "reverse",
        "sort",
        "clear",
        "update",
        "setdefault",
        "add",
        "discard",
        "difference_update",
        "intersection_update",
        "symmetric_difference_update",
    }
)
_UNSAFE = frozenset(
    {"self", "mro", "func_globals", "func_code", "func_closure", "func_defaults"}
    | _sandbox.UNSAFE_FUNCTION_ATTRIBUTES
    | _sandbox.UNSAFE_METHOD_ATTRIBUTES
    | _sandbox.UNSAFE_GENERATOR_ATTRIBUTES
    | _sandbox.UNSAFE_COROUTINE_ATTRIBUTES
    | _sandbox.UNSAFE_ASYNC_GENERATOR_ATTRIBUTES
)


@dataclass(frozen=True)
class Finding:
    """One problem in one template part, at a line of that part's source (1-based)."""

    line: int
    message: str


def _refused(name: str) -> bool:
    return name.startswith("_") or name in _UNSAFE


# -- escapes ---------------------------------------------------------------
def unsafe_uses(ast: nodes.Template) -> list[Finding]:
    """Everything in *ast* that the sandbox would refuse when rendering."""
    found: list[Finding] = []
    for node in ast.find_all(nodes.Node):
        if isinstance(node, nodes.Getattr) and _refused(node.attr):
            found.append(Finding(node.lineno, f"unsafe attribute {node.attr!r}"))
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
            and _refused(node.arg.value)
        ):
            found.append(Finding(node.lineno, f"unsafe attribute {node.arg.value!r}"))
        elif isinstance(node, nodes.Name) and node.name == "self":
            found.append(Finding(node.lineno, "'self' (the template object) is not available"))
        elif isinstance(node, nodes.Pow):
            found.append(Finding(node.lineno, "'**' is not allowed in templates"))
        elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            method = node.node.attr
            if method in _MUTATING:
                found.append(Finding(node.lineno, f"{method}() would change a value"))
            elif method in ("format", "format_map") and isinstance(node.node.node, nodes.Const):
                for part in _format_fields(node.node.node.value):
                    found.append(Finding(node.lineno, f"unsafe attribute {part!r} in a format"))
    return found


def _format_fields(pattern: object) -> Iterator[str]:
    if not isinstance(pattern, str):
        return
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f]
    except ValueError:
        return
    for spec in fields:
        for piece in spec.replace("[", ".").replace("]", "").split("."):
            if _refused(piece):
                yield piece


# -- names against the context --------------------------------------------
Path = tuple[str, ...]


def unknown_names(ast: nodes.Template, context: Record, kind: str) -> list[Finding]:
    """Unguarded references in *ast* that the *context* of a *kind* notification lacks."""
    walker = _Walker(context, kind, _bound_names(ast))
    walker.visit_all(ast.body, frozenset())
    return walker.found


@lru_cache(maxsize=512)  # a template is checked once per notification using it
def _bound_names(ast: nodes.Template) -> frozenset[str]:
    """Names the template assigns itself (``for``, ``set``, macro parameters)."""
    return frozenset(n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param"))


def _path(node: nodes.Node) -> Path | None:
    """``case.data.x`` / ``case["data"]["x"]`` as a tuple of names, or None."""
    parts: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
            node = node.node
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            parts.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Name) and node.ctx == "load":
            parts.append(node.name)
            return tuple(reversed(parts))
        else:
            return None


def _facts(test: nodes.Node, *, true: bool) -> frozenset[Path]:
    """Paths known to be set when *test* is true (or false, with ``true=False``)."""
    if isinstance(test, nodes.Not):
        return _facts(test.node, true=not true)
    if isinstance(test, nodes.And) and true:
        return _facts(test.left, true=True) | _facts(test.right, true=True)
    if isinstance(test, nodes.Or) and not true:
        return _facts(test.left, true=False) | _facts(test.right, true=False)
    if isinstance(test, nodes.Test) and test.name in ("defined", "undefined"):
        path = _path(test.node)
        says_defined = (test.name == "defined") == true
        return frozenset({path}) if path and says_defined else frozenset()
    if true:
        path = _path(test)
        return frozenset({path}) if path else frozenset()
    return frozenset()


class _Walker:
    def __init__(self, context: Record, kind: str, bound: frozenset[str]) -> None:
        self.context = context
        self.kind = kind
        self.bound = bound
        self.found: list[Finding] = []

    def visit_all(self, items: Iterable[nodes.Node], facts: frozenset[Path]) -> None:
        for item in items:
            self.visit(item, facts)

    def dead(self, facts: Iterable[Path]) -> bool:
        """Whether some fact needs a name that is always None for this kind."""
        return any(self.resolve(p) is NONE for p in facts)

    def resolve(self, path: Path) -> Shape | None:
        shape: Shape = self.context
        for key in path:
            if not isinstance(shape, Record) or key not in shape.keys:
                return None
            shape = shape.keys[key]
        return shape

    def visit(self, node: nodes.Node, facts: frozenset[Path]) -> None:
        if isinstance(node, nodes.If):
            self.branch(node.test, node.body, [*node.elif_, *node.else_], facts)
            return
        if isinstance(node, nodes.CondExpr):
            self.branch(node.test, [node.expr1], [node.expr2] if node.expr2 else [], facts)
            return
        if isinstance(node, nodes.And):
            self.visit(node.left, facts)
            more = _facts(node.left, true=True)
            if not self.dead(more):
                self.visit(node.right, facts | more)
            return
        if isinstance(node, nodes.Or):
            self.visit(node.left, facts)
            more = _facts(node.left, true=False)
            if not self.dead(more):
                self.visit(node.right, facts | more)
            return
        guarded = (isinstance(node, nodes.Filter) and node.name in ("default", "d")) or (
            isinstance(node, nodes.Test) and node.name in ("defined", "undefined")
        )
        if guarded:
            operand = node.node  # type: ignore[attr-defined]
            path = _path(operand) if operand is not None else None
            if path is not None:  # not checked: the filter or test copes with undefined
                for child in node.iter_child_nodes():
                    if child is not operand:
                        self.visit(child, facts)
                return
        path = _path(node)
        if path is not None:
            self.check(path, node.lineno, facts)
            return
        self.visit_all(node.iter_child_nodes(), facts)

    def branch(
        self,
        test: nodes.Node,
        then: list[nodes.Node],
        otherwise: list[nodes.Node],
        facts: frozenset[Path],
    ) -> None:
        self.visit(test, facts)
        yes, no = _facts(test, true=True), _facts(test, true=False)
        if not self.dead(yes):
            self.visit_all(then, facts | yes)
        if not self.dead(no):
            self.visit_all(otherwise, facts | no)

    def check(self, path: Path, line: int, facts: frozenset[Path]) -> None:
        if path[0] in self.bound or path[0] not in self.context.keys:
            return  # a local name, or one the undeclared-names check reports
        shape: Shape = self.context
        for i, key in enumerate(path):
            here = path[: i + 1]
            if shape is ANY:
                return
            if shape is NONE:  # a truthy guard would have made this branch dead
                owner = ".".join(here[:-1])
                self.found.append(
                    Finding(
                        line,
                        f"{owner} is not set in {self.kind} notifications, so "
                        f"{'.'.join(path)} cannot render (guard it: "
                        f"{{% if {owner} %}}…{{% endif %}})",
                    )
                )
                return
            assert isinstance(shape, Record)
            if key in shape.keys:
                shape = shape.keys[key]
                continue
            if i > 0 and key in _MAPPING_METHODS:
                return
            if any(f[: len(here)] == here for f in facts):
                return
            self.found.append(
                Finding(
                    line,
                    f"{'.'.join(here)} is not {shape.what}{did_you_mean(key, shape.keys)} "
                    f"(guard it with '{'.'.join(here)} is defined' or '|default' "
                    "if only some workflows have it)",
                )
            )
            return
