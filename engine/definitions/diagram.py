"""Diagrams of a definition: Mermaid ``stateDiagram-v2`` and Graphviz DOT."""

from __future__ import annotations

from engine.definitions.model import Deadline, TransitionSpec, Workflow

__all__ = ["render", "to_dot", "to_mermaid"]


def render(workflow: Workflow, fmt: str) -> str:
    if fmt == "mermaid":
        return to_mermaid(workflow)
    if fmt == "dot":
        return to_dot(workflow)
    raise ValueError(f"unknown diagram format {fmt!r}: use mermaid or dot")


def describe_deadline(d: Deadline) -> str:
    parts = [f"期限 {d.within}" if d.within else f"期限 至 {d.until_field}"]
    if d.from_state:
        parts[0] += f" (自 {d.from_state})"
    if d.remind:
        parts.append("提醒 " + "/".join(str(r) for r in d.remind))
    if d.remind_every:
        parts.append(f"每 {d.remind_every} 提醒")
    if d.escalate:
        parts.append(f"升级 {len(d.escalate)} 级")
    return ", ".join(parts)


def _edge_label(t: TransitionSpec) -> str:
    label = t.title or t.trigger
    if t.title:
        label += f" ({t.trigger})"
    if t.roles:
        label += " [" + ", ".join(map(str, t.roles)) + "]"
    if t.when:
        label += f" if {t.when}"
    return label


def _mermaid_text(text: str) -> str:
    # Mermaid labels end at ':' boundaries and break on some characters.
    return text.replace(":", "：").replace(";", "；").replace("#", "＃").replace('"', "'")


def to_mermaid(workflow: Workflow) -> str:
    lines = ["stateDiagram-v2", f"    %% {workflow.id}: {_mermaid_text(workflow.title)}"]
    for s in workflow.states:
        title = _mermaid_text(s.title or s.name)
        if s.deadline is not None:
            title += "<br/>" + _mermaid_text(describe_deadline(s.deadline))
        lines.append(f'    state "{title}" as {s.name}')
    lines.append(f"    [*] --> {workflow.initial}")
    for t in workflow.transitions:
        for source in t.sources:
            lines.append(f"    {source} --> {t.dest}: {_mermaid_text(_edge_label(t))}")
    for s in workflow.states:
        if s.final:
            lines.append(f"    {s.name} --> [*]")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(workflow: Workflow) -> str:
    lines = [
        f'digraph "{_dot_text(workflow.id)}" {{',
        f'    label="{_dot_text(workflow.title)}";',
        "    rankdir=TB;",
        '    node [shape=box, style=rounded, fontname="sans-serif"];',
        '    __start [shape=point, label=""];',
        f"    __start -> {workflow.initial};",
    ]
    for s in workflow.states:
        label = _dot_text(s.title or s.name)
        if s.deadline is not None:
            label += "\\n" + _dot_text(describe_deadline(s.deadline))
        shape = ", peripheries=2" if s.final else ""
        lines.append(f'    {s.name} [label="{label}"{shape}];')
    for t in workflow.transitions:
        for source in t.sources:
            lines.append(f'    {source} -> {t.dest} [label="{_dot_text(_edge_label(t))}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
