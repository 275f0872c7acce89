"""Notification templates: admin-edited Jinja2, rendered in a sandbox.

A template is one YAML file ``NAME.yaml`` with three keys — ``subject``,
``body`` and ``short`` (the SMS form, at most 70 characters once rendered).
Administrators put overrides and new templates in ``config/templates/``; the
bundled Chinese templates live beside this module.  Templates compile in an
:class:`ImmutableSandboxedEnvironment` with :class:`StrictUndefined`, and
``*``/``**`` are capped so a template cannot build a huge string; ``None``
prints as nothing.

A template that reaches for something the sandbox refuses (``__class__``,
``self``, ``mro``…) does not load, with the line of the file where it does.
:meth:`TemplateStore.check` is the validator's hook: does a template fit
one use in a workflow (see :mod:`notifications.template_fit`)?
:meth:`TemplateStore.render` is the dispatcher's: a template that still fails
at send time falls back to the generic template of its kind, logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.definitions.checks import TemplateFinding, TemplateUse
from engine.errors import DeliveryFailed, TemplateError
from engine.yamlkit import MapNode, NodeReader, ScalarNode, did_you_mean, parse_yaml
from notifications.render import context_shape
from notifications.template_fit import unknown_names, unsafe_uses

__all__ = [
    "BUNDLED_DIR",
    "CONTEXT_NAMES",
    "GENERIC",
    "PARTS",
    "SMS_LIMIT",
    "TemplateError",
    "TemplateSet",
    "TemplateStore",
]

log = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).parent / "templates"
CONTEXT_NAMES = frozenset({"case", "event", "deadline", "patrol", "recipient", "link", "kind"})
PARTS = ("subject", "body", "short")
SMS_LIMIT = 70
MAX_OUTPUT = 100_000
GENERIC = {
    "transition": "generic_transition",
    "reminder": "generic_reminder",
    "escalation": "generic_escalation",
}
"""The built-in template of each kind: the default, and the fallback at send time."""


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
        finalize=_blank_none,
    )


def _blank_none(value: Any) -> Any:
    """``{{ case.data.x }}`` of a field never set prints nothing, not "None"."""
    return "" if value is None else value


@dataclass(frozen=True, kw_only=True)
class TemplateSet:
    """One template's three parts, parsed and checked; each part is compiled to Python
    the first time it renders (the validator reads only the parsed trees, so
    ``gengbao validate`` does not pay for code generation)."""

    name: str
    path: Path
    env: jinja2.Environment
    asts: Mapping[str, nodes.Template]
    first_lines: Mapping[str, int]  # the line of the file where each part's text starts
    _compiled: dict[str, jinja2.Template] = field(default_factory=dict, compare=False)

    def part(self, part: str) -> jinja2.Template:
        """*part* compiled (once: a race compiles it twice, harmlessly)."""
        found = self._compiled.get(part)
        if found is None:
            code = self.env.compile(self.asts[part], f"{self.name}.{part}", f"{self.path}#{part}")
            found = self.env.template_class.from_code(self.env, code, self.env.make_globals(None))
            self._compiled[part] = found
        return found

    def render(self, context: Mapping[str, Any]) -> dict[str, str]:
        out = {part: self.part(part).render(**context).strip() for part in PARTS}
        for part, text in out.items():
            if len(text) > MAX_OUTPUT:
                raise SecurityError(f"{self.name}.{part} rendered too long")
        return out

    def file_line(self, part: str, line: int) -> int:
        """The line of the file for *line* of *part*'s text (exact for ``|`` blocks)."""
        return self.first_lines[part] + max(line, 1) - 1

    def failed_at(self, exc: BaseException) -> str:
        """``FILE:LINE`` where rendering raised *exc*, from Jinja2's rewritten traceback."""
        where = _shown(self.path)
        tb: TracebackType | None = exc.__traceback__
        while tb is not None:
            part = tb.tb_frame.f_code.co_filename.rpartition("#")[2]
            if tb.tb_frame.f_code.co_filename.startswith(f"{self.path}#") and part in PARTS:
                where = f"{_shown(self.path)}:{self.file_line(part, tb.tb_lineno)} ({part})"
            tb = tb.tb_next
        return where


class TemplateStore:
    """Finds ``NAME.yaml`` in the override folders first, then the bundled one."""

    def __init__(self, folders: Iterable[Path | str] = ()) -> None:
        self.folders = [Path(f) for f in folders] + [BUNDLED_DIR]
        self.env = make_environment()
        self._cache: dict[str, TemplateSet] = {}
        self._warned: set[tuple[str, str]] = set()

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

    # -- the validator's hook -------------------------------------------
    def resolve(self, name: str | None, kind: str) -> str:
        """The template a *kind* notification naming *name* is rendered with.

        No name, or a name with no file, means the generic template of the kind
        (the dispatcher's rule: a default such as ``reminder`` may be deleted).
        """
        if name is not None and self.path(name) is not None:
            return name
        return GENERIC.get(kind, name or "")

    def check(self, use: TemplateUse) -> list[TemplateFinding]:
        """Why *use* would not render: a missing name, an escape, an unknown name."""
        if use.explicit and use.name is not None and self.path(use.name) is None:
            known = self.names()
            return [
                TemplateFinding(
                    message=f"template {use.name!r} does not exist"
                    f"{did_you_mean(use.name, known)} (known: {', '.join(known) or 'none'})"
                )
            ]
        name = self.resolve(use.name, use.kind)
        try:
            template = self.get(name)
        except TemplateError as exc:
            return [
                TemplateFinding(message=str(exc), file=exc.file, line=exc.line, column=exc.column)
            ]
        shape = context_shape(use.workflow, use.kind, list(use.transitions))
        findings = []
        for part in PARTS:
            for found in unknown_names(template.asts[part], shape, use.kind):
                at = f"{_shown(template.path)}:{template.file_line(part, found.line)}"
                findings.append(
                    TemplateFinding(
                        message=f"template {name!r} ({use.kind}, {at} {part}): {found.message}"
                    )
                )
        return findings

    # -- the dispatcher's hook ------------------------------------------
    def render(self, name: str | None, kind: str, context: Mapping[str, Any]) -> dict[str, str]:
        """Render a *kind* notification with *name*; if that fails, with the generic one.

        A message is never lost to its template: the failure is logged once per
        template and reason, as a warning naming the template and the line.
        Only a case notice has a generic fallback (a patrol notice has no case):
        without one, the failure is :class:`DeliveryFailed` (not retryable), its
        reason saying where — a dead delivery with a reason, not a traceback.
        """
        chosen = self.resolve(name, kind)
        if name is not None and chosen != name:
            self._warn_once(name, "does not exist", chosen)
        try:
            return self.get(chosen).render(context)
        except Exception as exc:  # any template failure: syntax, undefined, sandbox, filter
            generic = GENERIC.get(kind)
            where, reason = self._failure(chosen, exc)
            if generic is None or generic == chosen or context.get("case") is None:
                raise DeliveryFailed(
                    f"template {chosen} failed at {where}: {reason}", retryable=False
                ) from exc
            self._warn_once(chosen, f"failed at {where}: {reason}", generic)
        return self.get(generic).render(context)

    def _warn_once(self, name: str, problem: str, instead: str) -> None:
        if (name, problem) in self._warned:
            return
        self._warned.add((name, problem))
        log.warning("template %s %s; sent with template %s instead", name, problem, instead)

    def _failure(self, name: str, exc: Exception) -> tuple[str, str]:
        """(where, why) template *name* failed with *exc*: ``FILE:LINE (part)``, the error."""
        if isinstance(exc, TemplateError):
            return exc.file or _shown(self.path(name) or BUNDLED_DIR), str(exc)
        reason = f"{type(exc).__name__}: {exc}"
        try:
            return self.get(name).failed_at(exc), reason
        except TemplateError:
            return str(name), reason

    # -- loading ---------------------------------------------------------
    def _load(self, name: str) -> TemplateSet:
        path = self.path(name)
        if path is None:
            known = self.names()
            raise TemplateError(
                f"template {name!r} does not exist{did_you_mean(name, known)} "
                f"(known: {', '.join(known) or 'none'})"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"template {name!r} ({path}) cannot be read: {exc}") from exc
        root, problems = parse_yaml(text, str(path))
        reader = NodeReader(str(path), problems)
        top = None
        if root is not None and not problems:
            top = reader.mapping(root, "", allowed=PARTS, required=PARTS)
        for part in PARTS:
            reader.text(top.get(part) if top is not None else None, part)
        if top is None or reader.diagnostics:
            first = reader.diagnostics[0]
            what = "; ".join(
                f"{d.path}: {d.message}" if d.path else d.message for d in reader.diagnostics
            )
            raise TemplateError(
                f"template {name!r} ({path}) cannot be read: {what}",
                file=str(path),
                line=first.line,
                column=first.column,
            )
        raw = top.plain()
        asts: dict[str, nodes.Template] = {}
        first_lines = {part: _first_line(top, part) for part in PARTS}
        for part in PARTS:
            source = raw[part]
            try:
                asts[part] = ast = self.env.parse(source)
                _check_compilable(self.env, ast)
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(
                    f"template {name!r} ({path}) {part}, line {exc.lineno}: {exc.message}"
                ) from exc
            stray = sorted(_undeclared(ast) - CONTEXT_NAMES)
            if stray:
                raise TemplateError(
                    f"template {name!r} ({path}) {part} uses unknown name(s) {', '.join(stray)}; "
                    f"available: {', '.join(sorted(CONTEXT_NAMES))}"
                )
            for found in unsafe_uses(ast):
                line = first_lines[part] + found.line - 1
                raise TemplateError(
                    f"template {name!r} {part}: {found.message}: the sandbox refuses it, "
                    "so no message could be rendered",
                    file=_shown(path),
                    line=line,
                    column=1,
                )
        return TemplateSet(name=name, path=path, env=self.env, asts=asts, first_lines=first_lines)


def _undeclared(ast: nodes.Template) -> set[str]:
    """The names *ast* reads from its context.  A template that assigns no name
    (no ``set``, ``for``, ``macro``…: almost every one) and mentions none of the
    generator's own (``self``, ``loop``…) reads each name it mentions from the
    context, so its names are the answer; otherwise Jinja2's own analysis
    answers, which follows the scopes (it runs the code generator, the dearer way)."""
    names = list(ast.find_all(nodes.Name))
    if all(n.ctx == "load" and n.name not in _SPECIAL_NAMES for n in names):
        return {n.name for n in names}
    return meta.find_undeclared_variables(ast)


# Names Jinja2's code generator gives a meaning of its own in some places.
_SPECIAL_NAMES = frozenset({"self", "loop", "caller", "varargs", "kwargs", "super"})


def _check_compilable(env: jinja2.Environment, ast: nodes.Template) -> None:
    """What Jinja2's compiler would refuse, found on the parsed tree: an unknown
    filter or test (anywhere: the compiler lets one inside ``{% if %}`` through to fail
    at send time) and a block defined twice."""
    for node in ast.find_all((nodes.Filter, nodes.Test)):
        known = env.filters if isinstance(node, nodes.Filter) else env.tests
        if node.name not in known:
            what = "filter" if isinstance(node, nodes.Filter) else "test"
            raise jinja2.TemplateAssertionError(f"No {what} named {node.name!r}.", node.lineno)
    seen: set[str] = set()
    for block in ast.find_all(nodes.Block):
        if block.name in seen:
            raise jinja2.TemplateAssertionError(f"block {block.name!r} defined twice", block.lineno)
        seen.add(block.name)


def _shown(path: Path) -> str:
    """*path* relative to the working directory when it is inside it (shorter messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _first_line(root: MapNode, part: str) -> int:
    """The file line of the first line of *part*'s text (a ``|``/``>`` block starts below)."""
    node = root.get(part)
    if not isinstance(node, ScalarNode):
        return 1
    return node.line + 1 if node.style in ("|", ">") else node.line
