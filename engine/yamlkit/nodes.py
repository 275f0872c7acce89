"""YAML text → positioned nodes.

PyYAML's node graph keeps marks; we turn it into small neutral nodes that
keep the line and column of every key and value, reject duplicate keys, and
resolve only ``true``/``false`` as booleans (``on``, ``off``, ``yes``, ``no``,
``y``, ``n`` stay strings — YAML 1.1's trap).  Anchors/aliases are refused: a
gengbao file is a plain document.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from engine.yamlkit.diagnostics import Diagnostic
from engine.yamlkit.hints import explain

__all__ = ["MapNode", "Node", "ScalarNode", "SeqNode", "from_plain", "is_null", "parse_yaml"]


@dataclass
class Node:
    line: int  # 1-based
    column: int  # 1-based

    def plain(self) -> Any:
        raise NotImplementedError


@dataclass
class ScalarNode(Node):
    value: Any = None
    tag: str = ""
    style: str | None = None  # '|' or '>' for a block scalar, quote character, None (plain)

    def plain(self) -> Any:
        return self.value


@dataclass
class SeqNode(Node):
    items: list[Node] = field(default_factory=list)

    def plain(self) -> list[Any]:
        return [item.plain() for item in self.items]


@dataclass
class MapNode(Node):
    """A mapping: ``entries`` maps key text → (key node, value node)."""

    entries: dict[str, tuple[ScalarNode, Node]] = field(default_factory=dict)

    def plain(self) -> dict[str, Any]:
        return {k: v.plain() for k, (_, v) in self.entries.items()}

    def get(self, key: str) -> Node | None:
        entry = self.entries.get(key)
        return entry[1] if entry else None

    def key_node(self, key: str) -> ScalarNode | None:
        entry = self.entries.get(key)
        return entry[0] if entry else None


class _StrictResolver(Resolver):
    """YAML 1.2-like booleans: only true/false (any case)."""


_StrictResolver.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}
_StrictResolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


class _Loader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    SafeConstructor,
    _StrictResolver,
):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        SafeConstructor.__init__(self)
        _StrictResolver.__init__(self)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in gengbao files", event.start_mark
            )
        return super().compose_node(parent, index)


if yaml.__with_libyaml__:
    from yaml._yaml import CParser  # libyaml's scanner, parser and composer

    class _FastLoader(CParser, SafeConstructor, _StrictResolver):
        """libyaml's scanner, parser and composer with the same constructor and
        resolver: several times faster, for text that holds no alias (no ``*``).
        Anything it refuses is parsed again by :class:`_Loader`, whose messages and
        positions the diagnostics are made from."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            _StrictResolver.__init__(self)


def _compose_fast(text: str) -> tuple[Any, Any] | None:
    """(root node, loader) by libyaml, or None: use the pure-Python loader."""
    if not yaml.__with_libyaml__ or "*" in text:
        return None
    loader = _FastLoader(text)
    try:
        return loader.get_single_node(), loader
    except yaml.YAMLError:
        loader.dispose()
        return None


def _pos(mark: Any) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


def parse_yaml(text: str, filename: str) -> tuple[Node | None, list[Diagnostic]]:
    """Parse one YAML document; syntax errors come back as diagnostics."""
    fast = _compose_fast(text)
    if fast is not None:
        root, c_loader = fast
        try:
            if root is None:
                return None, [Diagnostic(filename, 1, 1, "error", "", "the file is empty")]
            diagnostics: list[Diagnostic] = []
            return _convert(root, c_loader, filename, diagnostics), diagnostics
        finally:
            c_loader.dispose()
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark is not None else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        hint = explain(text, problem, line, col)
        if hint is not None:
            line, col, problem = hint
        return None, [Diagnostic(filename, line, col, "error", "", f"YAML syntax: {problem}")]
    except yaml.YAMLError as exc:
        return None, [Diagnostic(filename, 1, 1, "error", "", f"YAML syntax: {exc}")]
    finally:
        loader.dispose()
    if root is None:
        return None, [Diagnostic(filename, 1, 1, "error", "", "the file is empty")]
    found: list[Diagnostic] = []
    return _convert(root, loader, filename, found), found


def _convert(raw: Any, loader: Any, filename: str, out: list[Diagnostic]) -> Node:
    line, col = _pos(raw.start_mark)
    if isinstance(raw, yaml.MappingNode):
        result = MapNode(line, col)
        for key_raw, value_raw in raw.value:
            key = _convert(key_raw, loader, filename, out)
            value = _convert(value_raw, loader, filename, out)
            if not isinstance(key, ScalarNode) or key.value is None:
                out.append(
                    Diagnostic(filename, key.line, key.column, "error", "", "a key must be text")
                )
                continue
            name = str(key.value)
            if name in result.entries:
                first = result.entries[name][0]
                out.append(
                    Diagnostic(
                        filename,
                        key.line,
                        key.column,
                        "error",
                        "",
                        f"duplicate key {name!r} (first defined at line {first.line})",
                    )
                )
                continue
            result.entries[name] = (ScalarNode(key.line, key.column, name, key.tag), value)
        return result
    if isinstance(raw, yaml.SequenceNode):
        return SeqNode(line, col, [_convert(item, loader, filename, out) for item in raw.value])
    try:
        value = loader.construct_object(raw, deep=True)
    except (yaml.YAMLError, ValueError) as exc:  # e.g. an impossible date 2027-02-30
        out.append(Diagnostic(filename, line, col, "error", "", f"bad value {raw.value!r}: {exc}"))
        value = raw.value
    return ScalarNode(line, col, value, raw.tag, raw.style)


def is_null(node: Node | None) -> bool:
    """True for an absent value and for ``key:`` with nothing after it."""
    return node is None or (isinstance(node, ScalarNode) and node.value is None)


def from_plain(value: Any) -> Node:
    """Nodes for values built in Python (no file): every position is 0:0.

    Lets the one reader check settings passed in code exactly like those read
    from a file; its diagnostics then name the key path only.
    """
    if isinstance(value, Mapping):
        entries = {str(k): (ScalarNode(0, 0, str(k)), from_plain(v)) for k, v in value.items()}
        return MapNode(0, 0, entries)
    if isinstance(value, (list, tuple)):
        return SeqNode(0, 0, [from_plain(item) for item in value])
    return ScalarNode(0, 0, value)
