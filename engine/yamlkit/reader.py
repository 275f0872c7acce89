"""The one reader of positioned nodes: every gengbao file is read through it.

A :class:`NodeReader` checks the shape of values — mappings with their
allowed and required keys, text, numbers, booleans, identifiers, durations,
time zones, dates, lists — and *appends* a :class:`Diagnostic` for every
problem (``FILE:LINE:COL: error: PATH: MESSAGE``) instead of raising, so a
file's problems are all reported at once, in the same words everywhere.

Every method takes the node (``None`` when the key is absent) and the key
path to name in messages, and returns the value, or ``None`` when it is
absent or wrong (wrong values have been reported).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import DurationError
from engine.yamlkit.diagnostics import Diagnostic, Severity, did_you_mean
from engine.yamlkit.durations import Duration, parse_duration
from engine.yamlkit.nodes import MapNode, Node, ScalarNode, SeqNode

__all__ = ["IDENTIFIER", "NodeReader", "describe", "join_path"]

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
_MEANT_TRUE = frozenset({"yes", "y", "on"})
_MEANT_FALSE = frozenset({"no", "n", "off"})

T = TypeVar("T")


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class NodeReader:
    """Reads nodes of one file, gathering diagnostics and where each key path was written."""

    def __init__(self, filename: str, diagnostics: Iterable[Diagnostic] = ()) -> None:
        self.filename = filename
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        self.positions: dict[str, tuple[int, int]] = {}

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)

    # -- reporting -------------------------------------------------------
    def report(self, node: Node, path: str, message: str, severity: Severity = "error") -> None:
        self.diagnostics.append(
            Diagnostic(self.filename, node.line, node.column, severity, path, message)
        )

    def mark(self, path: str, node: Node) -> None:
        self.positions[path] = (node.line, node.column)

    # -- mappings --------------------------------------------------------
    def mapping(
        self,
        node: Node | None,
        path: str,
        *,
        allowed: Sequence[str],
        required: Sequence[str] = (),
        what: str = "",
    ) -> MapNode | None:
        """A mapping with only *allowed* keys and every *required* one.

        Unknown keys are reported at the key, with a did-you-mean and the
        allowed keys; missing ones at the mapping.  *what* describes the
        expected mapping in the message (default: its allowed keys).
        """
        if node is None:
            return None
        self.mark(path, node)
        if not isinstance(node, MapNode):
            shown = what or ", ".join(allowed)
            self.report(node, path, f"expected a mapping ({shown}), got {describe(node)}")
            return None
        self.keys(node, path, allowed=allowed, required=required)
        return node

    def keys(
        self, node: MapNode, path: str, *, allowed: Sequence[str], required: Sequence[str] = ()
    ) -> None:
        """Report unknown keys of *node* (did-you-mean, allowed keys) and missing *required*."""
        for key, (key_node, value) in node.entries.items():
            child = join_path(path, key)
            self.positions[child] = (value.line, value.column)
            if key not in allowed:
                self.report(
                    key_node,
                    child,
                    f"unknown key {key!r}{did_you_mean(key, allowed)} "
                    f"(allowed: {', '.join(allowed) or 'none'})",
                )
        for key in required:
            if key not in node.entries:
                self.report(node, path, f"missing required key {key!r}")

    # -- scalars ---------------------------------------------------------
    def text(
        self,
        node: Node | None,
        path: str,
        *,
        numbers: bool = False,
        empty: bool = True,
        secret: bool = False,
    ) -> str | None:
        """Text; with *numbers* a number is taken as its text (``title: 2026``)."""
        if node is None:
            return None
        value = node.value if isinstance(node, ScalarNode) else None
        if isinstance(value, str) and (empty or value.strip()):
            return value
        if numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        shown = "a secret" if secret and isinstance(node, ScalarNode) else describe(node)
        expected = "text" if empty else "non-empty text"
        if not secret and isinstance(value, (int, float)) and not isinstance(value, bool):
            shown += f"; quote it: '{value}'"
        self.report(node, path, f"expected {expected}, got {shown}")
        return None

    def identifier(self, node: Node | None, path: str, what: str) -> str | None:
        """A name of lower-case letters, digits and ``_``, starting with a letter."""
        value = self.text(node, path)
        if value is None or node is None:
            return None
        if not IDENTIFIER.match(value):
            self.report(
                node,
                path,
                f"bad {what} {value!r}: use lower-case letters, digits and '_', "
                "starting with a letter",
            )
            return None
        return value

    def choice(self, node: Node | None, path: str, choices: Sequence[str]) -> str | None:
        """One of *choices* (did-you-mean for a near miss)."""
        if node is None:
            return None
        value = node.value if isinstance(node, ScalarNode) else None
        if isinstance(value, str) and value in choices:
            return value
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        self.report(node, path, f"expected one of {', '.join(choices)}, got {describe(node)}{hint}")
        return None

    def boolean(self, node: Node | None, path: str) -> bool | None:
        """``true`` or ``false``; ``yes``/``on``/``no``/``off`` get a hint (they are text)."""
        if node is None:
            return None
        if isinstance(node, ScalarNode) and isinstance(node.value, bool):
            return node.value
        hint = ""
        if isinstance(node, ScalarNode) and isinstance(node.value, str):
            word = node.value.strip().lower()
            if word in _MEANT_TRUE | _MEANT_FALSE:
                meant = "true" if word in _MEANT_TRUE else "false"
                hint = f"; write {meant} ('{node.value}' is text in gengbao files)"
        self.report(node, path, f"expected true or false, got {describe(node)}{hint}")
        return None

    def number(
        self,
        node: Node | None,
        path: str,
        *,
        min: float | None = None,
        max: float | None = None,
        positive: bool = False,
        below: float | None = None,
    ) -> float | None:
        """A number within the bounds: ``min``/``max`` inclusive, ``positive`` (> 0), ``below``."""
        if node is None:
            return None
        value = node.value if isinstance(node, ScalarNode) else None
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and _within(value, min, max, positive, below)
        ):
            return float(value)
        bounds = _bounds(min, max, positive, below)
        expected = "a positive number" if bounds == " > 0" else f"a number{bounds}"
        self.report(node, path, f"expected {expected}, got {describe(node)}")
        return None

    def integer(
        self, node: Node | None, path: str, *, min: int | None = None, max: int | None = None
    ) -> int | None:
        """A whole number from *min* to *max* (inclusive)."""
        if node is None:
            return None
        value = node.value if isinstance(node, ScalarNode) else None
        if isinstance(value, int) and not isinstance(value, bool) and _within(value, min, max):
            return value
        bounds = _bounds(min, max)
        self.report(node, path, f"expected a whole number{bounds}, got {describe(node)}")
        return None

    def duration(self, node: Node | None, path: str) -> Duration | None:
        """``30m``, ``2h``, ``3d``, ``3 working days`` (and the Chinese units)."""
        if node is None:
            return None
        value = node.value if isinstance(node, ScalarNode) else node
        try:
            return parse_duration(value)
        except DurationError as exc:
            self.report(node, path, str(exc))
            return None

    def timezone(self, node: Node | None, path: str) -> str | None:
        """An IANA time zone name such as ``Asia/Shanghai``."""
        name = self.text(node, path, empty=False)
        if name is None or node is None:
            return None
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            self.report(node, path, f"unknown time zone {name!r} (e.g. 'Asia/Shanghai')")
            return None
        return name

    def date(self, node: Node | None, path: str) -> dt.date | None:
        """A calendar date without a time: ``2027-01-01``."""
        if node is None:
            return None
        value = node.value if isinstance(node, ScalarNode) else None
        if isinstance(value, dt.datetime):
            self.report(node, path, f"expected a date without a time, got {value.isoformat()}")
            return None
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
        self.report(node, path, f"expected a date like 2027-01-01, got {describe(node)}")
        return None

    def moment(self, node: Node | None, path: str) -> dt.datetime | None:
        """A date-time with its UTC offset (``2026-09-18T10:00:00+08:00``), in UTC."""
        if node is None:
            return None
        value = node.value if isinstance(node, ScalarNode) else None
        moment: dt.datetime | None = value if isinstance(value, dt.datetime) else None
        if moment is None and isinstance(value, str):
            try:
                moment = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                moment = None
        if moment is None:
            self.report(
                node,
                path,
                f"expected a date-time like 2026-09-18T10:00:00+08:00, got {describe(node)}",
            )
            return None
        if moment.tzinfo is None:
            self.report(node, path, "a date-time needs its UTC offset, e.g. +08:00")
            return None
        return moment.astimezone(dt.UTC)

    # -- lists -----------------------------------------------------------
    def items(
        self,
        node: Node | None,
        path: str,
        *,
        allow_scalar: bool = False,
        non_empty: bool = False,
        what: str = "",
    ) -> list[Node]:
        """The items of a list; with *allow_scalar* one value counts as a one-item list."""
        if node is None:
            return []
        if isinstance(node, SeqNode) and (node.items or not non_empty):
            for i, item in enumerate(node.items):
                self.mark(f"{path}[{i}]", item)
            return node.items
        if allow_scalar and isinstance(node, ScalarNode) and node.value is not None:
            self.mark(f"{path}[0]", node)
            return [node]
        expected = f"a non-empty list{what}" if non_empty else f"a list{what}"
        self.report(node, path, f"expected {expected}, got {describe(node)}")
        return []

    def list_of(
        self,
        node: Node | None,
        path: str,
        read: Callable[[Node, str], T | None],
        *,
        allow_scalar: bool = False,
        non_empty: bool = False,
        what: str = "",
    ) -> list[T]:
        """Each item read by ``read(item, 'path[i]')``; items it rejects are left out."""
        found: list[T] = []
        items = self.items(node, path, allow_scalar=allow_scalar, non_empty=non_empty, what=what)
        for i, item in enumerate(items):
            value = read(item, f"{path}[{i}]")
            if value is not None:
                found.append(value)
        return found


def _within(
    value: float,
    min: float | None,
    max: float | None,
    positive: bool = False,
    below: float | None = None,
) -> bool:
    return (
        (min is None or value >= min)
        and (max is None or value <= max)
        and (not positive or value > 0)
        and (below is None or value < below)
    )


def _bounds(
    min: float | None, max: float | None, positive: bool = False, below: float | None = None
) -> str:
    """`` from 1 to 65535``, `` ≥ 1``, `` > 0 and < 86400``: the bounds in a message."""
    if min is not None and max is not None:
        parts = [f"from {min:g} to {max:g}"]
    else:
        parts = [f"≥ {min:g}"] if min is not None else [f"≤ {max:g}"] if max is not None else []
    if positive:
        parts.insert(0, "> 0")
    if below is not None:
        parts.append(f"< {below:g}")
    return f" {' and '.join(parts)}" if parts else ""


def describe(node: Node | None) -> str:
    """What a node holds, for messages: ``text ('lots')``, ``a number (3)``, ``a list``."""
    if isinstance(node, MapNode):
        return "a mapping"
    if isinstance(node, SeqNode):
        return "a list" if node.items else "an empty list"
    if isinstance(node, ScalarNode):
        value = node.value
        if value is None:
            return "nothing (null)"
        if isinstance(value, bool):
            return f"a boolean ({str(value).lower()})"
        if isinstance(value, (int, float)):
            return f"a number ({value})"
        if isinstance(value, str):
            return f"text ({value!r})"
        return f"{type(value).__name__} ({value})"
    return "nothing"
