"""Property tests: random valid definitions compile; random damage never crashes the validator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.definitions import CompiledWorkflow, validate_text
from tests.support.properties import examples

DATA = Path(__file__).parent / "data"
SOURCES = [
    DATA / "valid" / "minimal.yaml",
    *sorted((Path(__file__).parent.parent / "workflows").glob("*.yaml")),
]
TEXTS = [p.read_text(encoding="utf-8") for p in SOURCES]

durations = st.sampled_from(["30m", "1h", "2h", "24h", "3d", "2 working days", "10 working days"])
exact_hours = st.integers(min_value=2, max_value=72)


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(min_value=2, max_value=8))
    names = [f"s{i}" for i in range(n)]
    states: dict[str, Any] = {}
    for name in names[:-1]:
        state: dict[str, Any] = {"title": f"状态{name}"}
        if draw(st.booleans()):
            hours = draw(exact_hours)
            state["deadline"] = {
                "within": f"{hours}h",
                "remind": [f"{draw(st.integers(1, hours - 1))}h"],
                "escalate": [{"after": "0m", "notify": ["town.leader"]}],
            }
        states[name] = state
    states[names[-1]] = {"title": "结束", "final": True}
    transitions: list[dict[str, Any]] = []
    for i in range(n - 1):  # a spine keeps everything reachable and finishing
        transitions.append({"trigger": f"go{i}", "from": names[i], "to": names[i + 1]})
    for j in range(draw(st.integers(0, 6))):
        src = draw(st.sampled_from(names[:-1]))
        dst = draw(st.sampled_from(names))
        limit = draw(st.integers(0, 1000))
        transitions.append(
            {"trigger": f"extra{j}", "from": src, "to": dst, "when": f"area_m2 >= {limit}"}
        )
    return {
        "workflow": "random_flow",
        "initial": names[0],
        "fields": {"area_m2": {"type": "number", "min": 0}},
        "states": states,
        "transitions": transitions,
    }


@settings(max_examples=examples(60), deadline=None)
@given(definitions(), st.integers(0, 2000))
def test_random_valid_definitions_compile_and_run(doc: dict[str, Any], area: int) -> None:
    result = validate_text(yaml.safe_dump(doc, allow_unicode=True), "random.yaml")
    assert result.ok, [str(d) for d in result.diagnostics]
    assert result.workflow is not None
    compiled = CompiledWorkflow(result.workflow)
    for t in result.workflow.transitions:
        taken = compiled.fire(t.sources[0], t.trigger, {"area_m2": area})
        expected = t.when is None or area >= int(t.when.split()[-1])
        assert (taken is not None) == expected
        if taken is not None:
            assert (taken.transition, taken.state) == (t, t.dest)


@st.composite
def damaged(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(TEXTS)).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(
            st.sampled_from(["delete", "duplicate", "swap", "truncate", "scribble", "indent"])
        )
        if action == "delete":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif action == "truncate":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif action == "indent":
            lines[i] = draw(st.sampled_from(["  ", "    ", "\t", ""])) + lines[i].lstrip()
        else:
            pos = draw(st.integers(0, len(lines[i])))
            junk = draw(st.text(alphabet="{}[]:,-'\"&*!|>#%@ abc123_.\n中", max_size=6))
            lines[i] = lines[i][:pos] + junk + lines[i][pos:]
        if not lines:
            break
    return "\n".join(lines)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_files_give_diagnostics_never_a_traceback(text: str) -> None:
    result = validate_text(text, "damaged.yaml")
    for d in result.diagnostics:
        assert d.line >= 1 and d.column >= 1
        assert str(d).startswith("damaged.yaml:")
    if result.ok:
        assert result.workflow is not None
        CompiledWorkflow(result.workflow)
    else:
        assert result.errors
