"""Assessment settings: score weights, the step measures, the survey match radius.

``config/assessment.yaml`` (beside the settings file; built-in defaults
otherwise — the same values as the bundled file)::

    base: 100
    weights:                 # points per unit of each component
      missed_violation: -0.5 # per survey/satellite finding the grid missed
      missed_patrol: -0.2    # per missed patrol period
      overdue: -0.2          # per overdue fact (a step's deadline passed)
      escalation: -0.1       # per escalation rung fired
      stop_late_share: -5    # × share of cases not stopped on time (0…1)
      report_late_share: -5  # × share of cases not reported on time
      verify_late_share: 0   # × share of cases not verified on time
      patrol_shortfall: -10  # × (1 − patrol completion rate)
    measures:                # a step runs from first entering a `from` state
      stop:   {from: [discovered], to: [stopped, stop_failed]}   # to first entering a `to` one
      report: {from: [stopped, stop_failed], to: [reported]}
      verify: {from: [reported],
               to: [dismissed, town_handling, district_handling, joint_enforcement]}
    match_radius_m: 50       # a case within this distance of a finding found it
    workflow: null           # only cases of this workflow (default: all)

Unknown keys are errors with their line and column, like every gengbao file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine.errors import ConfigError
from engine.yamlkit.diagnostics import did_you_mean
from engine.yamlkit.nodes import MapNode, Node, ScalarNode, SeqNode, parse_yaml

__all__ = [
    "COMPONENTS",
    "DEFAULT_MEASURES",
    "DEFAULT_WEIGHTS",
    "MEASURES",
    "AssessmentConfig",
    "Measure",
    "load_config",
    "parse_config",
]

MEASURES = ("stop", "report", "verify")
COMPONENTS = (
    "missed_violation",
    "missed_patrol",
    "overdue",
    "escalation",
    "stop_late_share",
    "report_late_share",
    "verify_late_share",
    "patrol_shortfall",
)
DEFAULT_WEIGHTS: dict[str, float] = {
    "missed_violation": -0.5,
    "missed_patrol": -0.2,
    "overdue": -0.2,
    "escalation": -0.1,
    "stop_late_share": -5.0,
    "report_late_share": -5.0,
    "verify_late_share": 0.0,
    "patrol_shortfall": -10.0,
}


@dataclass(frozen=True)
class Measure:
    """A step: from first entering any ``start`` state to first entering any ``end`` state."""

    start: tuple[str, ...]
    end: tuple[str, ...]


DEFAULT_MEASURES: dict[str, Measure] = {
    "stop": Measure(("discovered",), ("stopped", "stop_failed")),
    "report": Measure(("stopped", "stop_failed"), ("reported",)),
    "verify": Measure(
        ("reported",), ("dismissed", "town_handling", "district_handling", "joint_enforcement")
    ),
}


@dataclass(frozen=True)
class AssessmentConfig:
    base: float = 100.0
    weights: MappingProxyType[str, float] = field(
        default_factory=lambda: MappingProxyType(dict(DEFAULT_WEIGHTS))
    )
    measures: MappingProxyType[str, Measure] = field(
        default_factory=lambda: MappingProxyType(dict(DEFAULT_MEASURES))
    )
    match_radius_m: float = 50.0
    workflow: str | None = None
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "weights": dict(self.weights),
            "measures": {
                k: {"from": list(m.start), "to": list(m.end)} for k, m in self.measures.items()
            },
            "match_radius_m": self.match_radius_m,
            "workflow": self.workflow,
        }


_TOP = ("base", "weights", "measures", "match_radius_m", "workflow")


def load_config(path: str | Path) -> AssessmentConfig:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}", file=str(file)) from None
    return parse_config(text, str(file))


def parse_config(text: str, filename: str = "<assessment>") -> AssessmentConfig:
    root, diagnostics = parse_yaml(text, filename)
    found: list[tuple[int, int, str]] = [(d.line, d.column, str(d)) for d in diagnostics]
    if root is None or found:
        raise _error(filename, found)

    def bad(node: Node, path: str, message: str) -> None:
        found.append(
            (
                node.line,
                node.column,
                f"{filename}:{node.line}:{node.column}: error: {path}: {message}",
            )
        )

    def keys(node: Node, path: str, allowed: tuple[str, ...]) -> MapNode | None:
        if not isinstance(node, MapNode):
            bad(node, path, f"expected a mapping with keys {', '.join(allowed)}")
            return None
        for name, (key_node, _) in node.entries.items():
            if name not in allowed:
                hint = did_you_mean(name, allowed)
                where = f"{path}.{name}" if path else name
                bad(key_node, where, f"unknown key {name!r}{hint} (allowed: {', '.join(allowed)})")
        return node

    def number(node: Node, path: str) -> float | None:
        value = node.value if isinstance(node, ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad(node, path, f"expected a number, got {node.plain()!r}")
            return None
        return float(value)

    def states(node: Node | None, path: str, owner: Node) -> tuple[str, ...]:
        if not isinstance(node, SeqNode) or not node.items:
            bad(node or owner, path, "expected a non-empty list of state names")
            return ()
        out = []
        for i, item in enumerate(node.items):
            if not isinstance(item, ScalarNode) or not isinstance(item.value, str):
                bad(item, f"{path}[{i}]", "expected a state name")
            else:
                out.append(item.value)
        return tuple(out)

    top = keys(root, "", _TOP)
    config: dict[str, Any] = {"source": filename}
    if top is None:
        raise _error(filename, found)
    if (node := top.get("base")) is not None and (value := number(node, "base")) is not None:
        config["base"] = value
    if (node := top.get("match_radius_m")) is not None:
        value = number(node, "match_radius_m")
        if value is not None and value < 0:
            bad(node, "match_radius_m", "must be ≥ 0")
        elif value is not None:
            config["match_radius_m"] = value
    if (node := top.get("workflow")) is not None:
        value_ = node.value if isinstance(node, ScalarNode) else None
        if value_ is not None and not isinstance(value_, str):
            bad(node, "workflow", "expected a workflow id or null")
        config["workflow"] = value_
    weights = dict(DEFAULT_WEIGHTS)
    if (node := top.get("weights")) is not None and (m := keys(node, "weights", COMPONENTS)):
        for name, (_, value_node) in m.entries.items():
            if name in COMPONENTS and (w := number(value_node, f"weights.{name}")) is not None:
                weights[name] = w
    config["weights"] = MappingProxyType(weights)
    measures = dict(DEFAULT_MEASURES)
    if (node := top.get("measures")) is not None and (m := keys(node, "measures", MEASURES)):
        for name, (_, value_node) in m.entries.items():
            spec = keys(value_node, f"measures.{name}", ("from", "to"))
            if name in MEASURES and spec is not None:
                start = states(spec.get("from"), f"measures.{name}.from", spec)
                end = states(spec.get("to"), f"measures.{name}.to", spec)
                measures[name] = Measure(start, end)
    config["measures"] = MappingProxyType(measures)
    if found:
        raise _error(filename, found)
    return AssessmentConfig(**config)


def _error(filename: str, found: list[tuple[int, int, str]]) -> ConfigError:
    problems = [text for _, _, text in sorted(found)]
    return ConfigError("\n".join(problems), file=filename, problems=problems)
