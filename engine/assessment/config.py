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
from engine.yamlkit import Diagnostic, Node, NodeReader, is_null, parse_yaml

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
        raise ConfigError(f"{file}: cannot read: {exc}", file=str(file)) from exc
    return parse_config(text, str(file))


def parse_config(text: str, filename: str = "<assessment>") -> AssessmentConfig:
    root, diagnostics = parse_yaml(text, filename)
    reader = NodeReader(filename, diagnostics)
    config = _read(reader, root) if root is not None and not diagnostics else None
    if config is None or reader.diagnostics:
        raise _error(filename, reader.diagnostics)
    return config


def _read(reader: NodeReader, root: Node) -> AssessmentConfig | None:
    top = reader.mapping(root, "", allowed=_TOP)
    if top is None:
        return None
    config: dict[str, Any] = {"source": reader.filename}
    base = reader.number(top.get("base"), "base")
    if base is not None:
        config["base"] = base
    radius = reader.number(top.get("match_radius_m"), "match_radius_m", min=0)
    if radius is not None:
        config["match_radius_m"] = radius
    workflow = top.get("workflow")
    if not is_null(workflow):
        config["workflow"] = reader.identifier(workflow, "workflow", "workflow id")
    weights = dict(DEFAULT_WEIGHTS)
    block = reader.mapping(top.get("weights"), "weights", allowed=COMPONENTS)
    for name, (_, node) in block.entries.items() if block is not None else ():
        weight = reader.number(node, f"weights.{name}") if name in COMPONENTS else None
        if weight is not None:
            weights[name] = weight
    config["weights"] = MappingProxyType(weights)
    measures = dict(DEFAULT_MEASURES)
    block = reader.mapping(top.get("measures"), "measures", allowed=MEASURES)
    for name, (_, node) in block.entries.items() if block is not None else ():
        if name not in MEASURES:
            continue  # reported as an unknown key
        path = f"measures.{name}"
        spec = reader.mapping(node, path, allowed=("from", "to"), required=("from", "to"))
        if spec is not None:
            start = _states(reader, spec.get("from"), f"{path}.from")
            end = _states(reader, spec.get("to"), f"{path}.to")
            measures[name] = Measure(start, end)
    config["measures"] = MappingProxyType(measures)
    return AssessmentConfig(**config)


def _states(reader: NodeReader, node: Node | None, path: str) -> tuple[str, ...]:
    def state(item: Node, where: str) -> str | None:
        return reader.identifier(item, where, "state name")

    return tuple(reader.list_of(node, path, state, non_empty=True, what=" of state names"))


def _error(filename: str, diagnostics: list[Diagnostic]) -> ConfigError:
    ordered = sorted(set(diagnostics))
    problems = [str(d) for d in ordered]
    return ConfigError(
        "\n".join(problems),
        file=filename,
        problems=problems,
        diagnostics=[d.as_dict() for d in ordered],
    )
