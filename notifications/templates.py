"""Notification templates: admin-edited Jinja2, rendered in a sandbox.

A template is one YAML file ``NAME.yaml`` with three keys — ``subject``,
``body`` and ``short`` (the SMS form, at most 70 characters once rendered).
Administrators put overrides and new templates in ``config/templates/``; the
bundled Chinese templates live beside this module.  Templates compile in an
:class:`ImmutableSandboxedEnvironment` with :class:`StrictUndefined`, and
``*``/``**`` are capped so a template cannot build a huge string.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2 import meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = [
    "BUNDLED_DIR",
    "CONTEXT_NAMES",
    "PARTS",
    "SMS_LIMIT",
    "TemplateSet",
    "TemplateStore",
]

BUNDLED_DIR = Path(__file__).parent / "templates"
CONTEXT_NAMES = frozenset({"case", "event", "deadline", "patrol", "recipient", "link", "kind"})
PARTS = ("subject", "body", "short")
SMS_LIMIT = 70
MAX_OUTPUT = 100_000


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise SecurityError("'**' is not allowed in templates")
        for seq, count in ((left, right), (right, left)):
            if (
                isinstance(seq, (str, list))
                and isinstance(count, int)
                and len(seq) * count > 10_000
            ):
                raise SecurityError("'*' would build a string that is too long")
        return super().call_binop(context, operator, left, right)


def make_environment(*, html: bool = False) -> jinja2.Environment:
    return _Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=html,
        trim_blocks=True,
        keep_trailing_newline=False,
    )


@dataclass(frozen=True)
class TemplateSet:
    name: str
    path: Path
    subject: jinja2.Template
    body: jinja2.Template
    short: jinja2.Template

    def render(self, context: Mapping[str, Any]) -> dict[str, str]:
        out = {part: getattr(self, part).render(**context).strip() for part in PARTS}
        for part, text in out.items():
            if len(text) > MAX_OUTPUT:
                raise SecurityError(f"{self.name}.{part} rendered too long")
        return out


class TemplateError(ValueError):
    """A template file that is missing, malformed or does not compile."""


class TemplateStore:
    """Finds ``NAME.yaml`` in the override folders first, then the bundled one."""

    def __init__(self, folders: Iterable[Path | str] = ()) -> None:
        self.folders = [Path(f) for f in folders] + [BUNDLED_DIR]
        self.env = make_environment()
        self._cache: dict[str, TemplateSet] = {}

    def path(self, name: str) -> Path | None:
        for folder in self.folders:
            candidate = folder / f"{name}.yaml"
            if candidate.is_file():
                return candidate
        return None

    def names(self) -> list[str]:
        return sorted(
            {p.stem for folder in self.folders if folder.is_dir() for p in folder.glob("*.yaml")}
        )

    def get(self, name: str) -> TemplateSet:
        if name not in self._cache:
            self._cache[name] = self._load(name)
        return self._cache[name]

    def problem(self, name: str) -> str | None:
        """Why template *name* cannot be used, or None (the validator's hook)."""
        try:
            self.get(name)
        except TemplateError as exc:
            return str(exc)
        return None

    def _load(self, name: str) -> TemplateSet:
        path = self.path(name)
        if path is None:
            known = ", ".join(self.names()) or "none"
            raise TemplateError(f"template {name!r} does not exist (known: {known})")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise TemplateError(f"template {name!r} ({path}) cannot be read: {exc}") from None
        if not isinstance(raw, dict):
            raise TemplateError(
                f"template {name!r} ({path}) must be a mapping of {', '.join(PARTS)}"
            )
        unknown = sorted(set(raw) - set(PARTS))
        missing = [p for p in PARTS if not isinstance(raw.get(p), str)]
        if unknown or missing:
            what = []
            if missing:
                what.append("missing or not text: " + ", ".join(missing))
            if unknown:
                what.append("unknown keys: " + ", ".join(map(str, unknown)))
            raise TemplateError(f"template {name!r} ({path}): {'; '.join(what)}")
        compiled: dict[str, jinja2.Template] = {}
        for part in PARTS:
            source = raw[part]
            try:
                ast = self.env.parse(source)
                compiled[part] = self.env.from_string(source)
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(
                    f"template {name!r} ({path}) {part}, line {exc.lineno}: {exc.message}"
                ) from None
            stray = sorted(meta.find_undeclared_variables(ast) - CONTEXT_NAMES)
            if stray:
                raise TemplateError(
                    f"template {name!r} ({path}) {part} uses unknown name(s) {', '.join(stray)}; "
                    f"available: {', '.join(sorted(CONTEXT_NAMES))}"
                )
        return TemplateSet(name, path, compiled["subject"], compiled["body"], compiled["short"])
