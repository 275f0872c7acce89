"""Roles a workflow names, checked against a grid: ``town.leadr`` validates as a
well-formed role, and then nobody can ever act.  Given the (level, role) pairs
a grid actually holds, every reference to one it lacks is an error at its line.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from engine.definitions.model import SYSTEM_ROLE, RoleRef, Workflow
from engine.yamlkit.diagnostics import Diagnostic, did_you_mean

__all__ = ["missing_roles"]


def _references(wf: Workflow) -> Iterator[tuple[str, RoleRef]]:
    """Every role reference of *wf* with the key path where it was written."""
    for i, ref in enumerate(wf.roles):
        yield f"roles[{i}]", ref
    for i, t in enumerate(wf.transitions):
        for j, ref in enumerate(t.roles):
            yield f"transitions[{i}].roles[{j}]", ref
        for j, ref in enumerate(t.notify):
            yield f"transitions[{i}].notify[{j}]", ref
    for state in wf.states:
        rungs = state.deadline.escalate if state.deadline else ()
        for k, rung in enumerate(rungs):
            for j, ref in enumerate(rung.notify):
                yield f"states.{state.name}.deadline.escalate[{k}].notify[{j}]", ref


def missing_roles(
    wf: Workflow,
    positions: dict[str, tuple[int, int]],
    held: Collection[tuple[str, str]],
    grid_name: str,
) -> list[Diagnostic]:
    """An error for each role of *wf* that no unit of its level holds in *held*."""
    found: list[Diagnostic] = []
    for path, ref in _references(wf):
        if ref.role == SYSTEM_ROLE or (ref.level, ref.role) in held:
            continue
        at_level = sorted(f"{level}.{role}" for level, role in held if level == ref.level)
        known = f"it has {', '.join(at_level)}" if at_level else f"it has no {ref.level} roles"
        line, column = positions.get(path, positions.get("", (1, 1)))
        found.append(
            Diagnostic(
                wf.source_path,
                line,
                column,
                "error",
                path,
                f"no {ref.level} unit of {grid_name} has the role '{ref}': nobody could act "
                f"or be told ({known}){did_you_mean(str(ref), at_level)}",
            )
        )
    return found
