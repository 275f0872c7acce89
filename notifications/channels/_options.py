"""Reading one channel's settings: typed getters over its positioned mapping.

Each channel module has a ``from_settings(options)`` that asks for its keys
through :class:`Options`; every problem goes to the shared
:class:`~engine.yamlkit.NodeReader` as a diagnostic at the value's
``FILE:LINE:COL`` with its key path (``notifications.channels.NAME.KEY``),
instead of being raised, so all of them are reported at once.  Keys nobody
asked for are unknown and reported with the allowed keys.  Values of keys
marked ``secret`` never appear in a message.
"""

from __future__ import annotations

from engine.yamlkit import (
    Diagnostic,
    MapNode,
    Node,
    NodeReader,
    ScalarNode,
    describe,
    is_null,
    join_path,
)

__all__ = ["DEFAULT_TIMEOUT", "Options"]

DEFAULT_TIMEOUT = 10.0


class Options:
    """The settings mapping of one channel, at key path *path*."""

    def __init__(self, path: str, node: Node | None, reader: NodeReader) -> None:
        self.path = path
        self.reader = reader
        self._asked: list[str] = []
        self._node: MapNode | None = None
        if isinstance(node, MapNode):
            self._node = node
        elif not is_null(node):
            assert node is not None
            reader.report(node, path, f"expected a mapping of settings, got {describe(node)}")

    @property
    def problems(self) -> list[Diagnostic]:
        """Every diagnostic so far (of this channel and the others read before it)."""
        return self.reader.diagnostics

    # -- recording -------------------------------------------------------

    def problem(self, key: str, text: str) -> None:
        """Report *text* at *key*'s value (or at the channel's mapping when it is absent)."""
        at = self._value(key) if key else None
        where: Node = at or self._node or ScalarNode(0, 0)
        self.reader.report(where, join_path(self.path, key), text)

    def has(self, key: str) -> bool:
        return not is_null(self._get(key))

    def _value(self, key: str) -> Node | None:
        return self._node.get(key) if self._node is not None else None

    def _get(self, key: str) -> Node | None:
        if key not in self._asked:
            self._asked.append(key)
        value = self._value(key)
        return None if is_null(value) else value

    def _at(self, key: str) -> str:
        return join_path(self.path, key)

    def check_unknown(self) -> None:
        """Report every key that no getter asked for."""
        if self._node is not None:
            self.reader.keys(self._node, self.path, allowed=sorted(self._asked))

    # -- getters ---------------------------------------------------------

    def text(
        self,
        key: str,
        *,
        required: bool = False,
        default: str | None = None,
        secret: bool = False,
        empty: bool = False,
    ) -> str | None:
        node = self._get(key)
        if node is None:
            if required:
                self._missing(key)
            return default
        value = self.reader.text(node, self._at(key), empty=empty, secret=secret)
        return default if value is None else value

    def _missing(self, key: str) -> None:
        where: Node = self._node or ScalarNode(0, 0)
        self.reader.report(where, self.path, f"missing required key {key!r}")

    def url(self, key: str, *, required: bool = False, secret: bool = False) -> str | None:
        value = self.text(key, required=required, secret=secret)
        if value is not None and not value.startswith(("http://", "https://")):
            shown = "" if secret else f" {value!r}"
            self.problem(key, f"expected an http:// or https:// URL, got{shown or ' other text'}")
            return None
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.reader.choice(self._get(key), self._at(key), choices)
        return default if value is None else value

    def number(self, key: str, default: float) -> float:
        value = self.reader.number(self._get(key), self._at(key), positive=True)
        return default if value is None else value

    def timeout(self) -> float:
        return self.number("timeout", DEFAULT_TIMEOUT)

    def port(self, key: str) -> int | None:
        return self.reader.integer(self._get(key), self._at(key), min=1, max=65535)

    def text_mapping(self, key: str, *, secret: bool = False) -> dict[str, str]:
        node = self._get(key)
        if node is None:
            return {}
        if not isinstance(node, MapNode):
            self.reader.report(
                node, self._at(key), f"expected a mapping of names to text, got {describe(node)}"
            )
            return {}
        out: dict[str, str] = {}
        for name, (_, item) in node.entries.items():
            text = self.reader.text(item, f"{self._at(key)}.{name}", numbers=True, secret=secret)
            if text is not None:
                out[name] = text
        return out

    def scalar(self, key: str) -> str | int | float | bool | None:
        node = self._get(key)
        if node is None:
            return None
        value = node.value if isinstance(node, ScalarNode) else None
        if isinstance(value, (str, int, float, bool)):
            return value
        self.reader.report(node, self._at(key), f"expected a single value, got {describe(node)}")
        return None
