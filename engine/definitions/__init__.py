"""Workflow definitions: YAML text → positioned nodes → model → checks → machine.

Public surface::

    result = validate_text(text, "farmland.yaml", templates=store.check)
    result.diagnostics            # every error and warning, in file order
    wf = load_definition(path)    # the Workflow, or DefinitionError with all diagnostics
    CompiledWorkflow(wf)          # the transitions.Machine for that definition
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.definitions.checks import TemplateCheck, check
from engine.definitions.compiler import CompiledWorkflow
from engine.definitions.loader import load_text
from engine.definitions.model import (
    Deadline,
    FieldSpec,
    RoleRef,
    Rung,
    StateSpec,
    Supervision,
    TransitionSpec,
    Workflow,
)
from engine.errors import DefinitionError
from engine.yamlkit.diagnostics import Diagnostic
from engine.yamlkit.durations import Duration, parse_duration

__all__ = [
    "CompiledWorkflow",
    "Deadline",
    "Diagnostic",
    "Duration",
    "FieldSpec",
    "RoleRef",
    "Rung",
    "StateSpec",
    "Supervision",
    "TransitionSpec",
    "Validated",
    "Workflow",
    "load_definition",
    "parse_duration",
    "validate_file",
    "validate_text",
]


@dataclass(frozen=True)
class Validated:
    workflow: Workflow | None
    diagnostics: list[Diagnostic]
    source: str = ""
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    @property
    def ok(self) -> bool:
        return self.workflow is not None and not self.errors


def validate_text(
    text: str, filename: str = "<workflow>", templates: TemplateCheck | None = None
) -> Validated:
    loaded = load_text(text, filename)
    diagnostics = check(loaded, templates)
    return Validated(loaded.workflow, diagnostics, text, loaded.positions)


def validate_file(path: str | Path, templates: TemplateCheck | None = None) -> Validated:
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return Validated(None, [Diagnostic(name, 1, 1, "error", "", f"cannot read file: {reason}")])
    return validate_text(text, name, templates)


def load_definition(path: str | Path, templates: TemplateCheck | None = None) -> Workflow:
    """The checked workflow in *path*; :class:`DefinitionError` lists every error."""
    result = validate_file(path, templates)
    if not result.ok or result.workflow is None:
        raise DefinitionError(result.errors or result.diagnostics)
    return result.workflow
