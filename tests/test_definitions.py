"""The definition pipeline end to end: loader traps, compiler, diagrams, schema, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest
import yaml

from engine.cli import main
from engine.definitions import (
    CompiledWorkflow,
    Workflow,
    load_definition,
    validate_file,
    validate_text,
)
from engine.definitions.diagram import render
from engine.definitions.jsonschema import workflow_schema
from engine.errors import DefinitionError, TriggerNotAllowed, UnknownTrigger
from engine.paths import template_store

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data"
MINIMAL = DATA / "valid" / "minimal.yaml"
BUNDLED = sorted((ROOT / "workflows").glob("*.yaml"))
STORE = template_store(str(ROOT / "config" / "gengbao.yaml"))


@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_bundled_workflows_validate_without_warnings(path: Path) -> None:
    result = validate_file(path, STORE.check)
    assert [str(d) for d in result.diagnostics] == []


def test_yaml_norway_words_stay_text() -> None:
    text = MINIMAL.read_text().replace("其他]", "其他, on, off, yes, no, y, n]")
    wf = load_definition_text(text)
    field = wf.field("land_type")
    assert field is not None
    assert field.values[-6:] == ("on", "off", "yes", "no", "y", "n")


def load_definition_text(text: str) -> Workflow:
    result = validate_text(text, "inline.yaml")
    assert result.ok, [str(d) for d in result.diagnostics]
    assert result.workflow is not None
    return result.workflow


def test_every_problem_is_reported_in_one_run() -> None:
    text = (
        MINIMAL.read_text()
        .replace("initial: discovered", "initial: discoverd")
        .replace("to: stopped", "to: stoped")
        .replace("within: 2h", "within: 2 hours")
    )
    messages = [str(d) for d in validate_text(text, "x.yaml").errors]
    assert any("initial state 'discoverd'" in m for m in messages)
    assert any("unknown state 'stoped'" in m for m in messages)
    assert any("cannot read duration '2 hours'" in m for m in messages)


def test_load_definition_raises_with_every_diagnostic(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL.read_text().replace("to: stopped", "to: stoped"), encoding="utf-8")
    with pytest.raises(DefinitionError) as info:
        load_definition(bad)
    assert "unknown state 'stoped'" in str(info.value)
    assert info.value.diagnostics


def test_content_hash_tracks_the_text() -> None:
    a = validate_text(MINIMAL.read_text()).workflow
    b = validate_text(MINIMAL.read_text() + "\n# a comment\n").workflow
    assert a is not None and b is not None
    assert a.content_hash != b.content_hash
    assert len(a.content_hash) == 64


OVERLAPPING = """
workflow: overlap
title: 两条守卫可同时为真
initial: open
fields:
  area_m2: {type: number, min: 0}
states:
  open: {title: 待处理}
  big: {title: 大}
  any: {title: 任意, final: true}
transitions:
  - {trigger: close, from: open, to: big, when: "area_m2 >= 100"}
  - {trigger: close, from: open, to: any, when: "area_m2 >= 0"}
  - {trigger: drop, from: big, to: any}
"""


class TestCompiler:
    def compiled(self) -> CompiledWorkflow:
        return CompiledWorkflow(load_definition(MINIMAL))

    def overlapping(self) -> CompiledWorkflow:
        result = validate_text(OVERLAPPING, "overlap.yaml")
        assert result.ok and result.workflow is not None, [str(d) for d in result.diagnostics]
        return CompiledWorkflow(result.workflow)

    def test_first_true_guard_wins(self) -> None:
        machine = self.compiled()
        small = machine.fire("stopped", "close", {"area_m2": 10})
        large = machine.fire("stopped", "close", {"area_m2": 500})
        assert small is not None and small.transition.index == 1 and small.state == "closed"
        assert large is not None and large.transition.index == 2 and large.state == "closed"

    def test_the_machine_chooses_among_guards_that_are_both_true(self) -> None:
        compiled = self.overlapping()
        both = compiled.fire("open", "close", {"area_m2": 500})
        assert both is not None and (both.transition.index, both.state) == (0, "big")
        only_second = compiled.fire("open", "close", {"area_m2": 5})
        assert only_second is not None and only_second.state == "any"
        # The order is the machine's, not the definition's: reverse the machine's own
        # list of transitions for this trigger and source, and the other one wins.
        compiled.machine.events["close"].transitions["open"].reverse()
        flipped = compiled.fire("open", "close", {"area_m2": 500})
        assert flipped is not None and (flipped.transition.index, flipped.state) == (1, "any")
        assert [t.index for t in compiled.options("open", "close")] == [1, 0]

    def test_all_guards_false_takes_nothing(self) -> None:
        assert self.compiled().fire("stopped", "close", {}) is None

    def test_a_trigger_the_state_has_no_transition_for_is_not_allowed(self) -> None:
        compiled = self.overlapping()
        for ask in (
            lambda: compiled.options("big", "close"),
            lambda: compiled.fire("big", "close", {"area_m2": 500}),
        ):
            with pytest.raises(TriggerNotAllowed) as info:
                ask()
            assert str(info.value) == "trigger 'close' is not allowed in state 'big'; allowed: drop"
            assert info.value.details == {"trigger": "close", "state": "big", "allowed": ["drop"]}
        assert compiled.allowed("big") == ["drop"]  # asking did not make 'close' allowed there
        assert compiled.allowed("any") == []
        with pytest.raises(UnknownTrigger) as unknown:
            compiled.fire("open", "clsoe", {})
        assert unknown.value.details["allowed"] == ["close"]

    def test_no_automatic_transitions_and_no_model_kept(self) -> None:
        machine = self.compiled()
        assert "to_closed" not in machine.machine.events
        assert machine.fire("discovered", "stop", {"note": "x"}) is not None
        assert machine.machine.models == []

    def test_concurrent_events_need_no_lock(self) -> None:
        compiled = self.overlapping()

        def fire(area: int) -> str:
            taken = compiled.fire("open", "close", {"area_m2": area})
            assert taken is not None
            return taken.state

        areas = [i % 200 for i in range(4000)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            states = list(pool.map(fire, areas))
        assert states == ["big" if a >= 100 else "any" for a in areas]
        assert compiled.machine.models == []


def test_mermaid_diagram_names_states_transitions_and_deadlines() -> None:
    wf = load_definition(MINIMAL)
    text = render(wf, "mermaid")
    assert text.startswith("stateDiagram-v2\n")
    assert "[*] --> discovered" in text
    assert 'state "已发现<br/>期限 2h, 提醒 1h, 升级 1 级" as discovered' in text
    assert "stopped --> closed: close if area_m2 >= 100 [town.leader]" not in text
    assert "stopped --> closed: close [town.leader] if area_m2 >= 100" in text
    assert "closed --> [*]" in text


def test_dot_diagram_is_a_digraph() -> None:
    text = render(load_definition(MINIMAL), "dot")
    assert text.startswith('digraph "mini" {')
    assert "discovered -> stopped" in text
    assert "peripheries=2" in text


def test_json_schema_accepts_valid_files_and_rejects_unknown_keys() -> None:
    schema = workflow_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in [MINIMAL, *BUNDLED]:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert list(validator.iter_errors(document)) == [], path
    document = yaml.safe_load(MINIMAL.read_text(encoding="utf-8"))
    document["transitions"][0]["colour"] = "red"
    assert list(validator.iter_errors(document))


class TestCli:
    def test_validate_ok_exits_0(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["validate", str(MINIMAL)]) == 0
        assert "ok: mini (3 states, 3 transitions)" in capsys.readouterr().out

    def test_validate_error_exits_1_with_compiler_style_lines(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        broken = DATA / "broken" / "to_unknown_state.yaml"
        assert main(["validate", str(broken)]) == 1
        err = capsys.readouterr().err
        assert f"{broken}:29:9: error: transitions[0].to: unknown state 'stoped'" in err

    def test_validate_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        broken = DATA / "broken" / "bad_duration.yaml"
        assert main(["validate", "--json", str(broken), str(MINIMAL)]) == 1
        report = json.loads(capsys.readouterr().out)
        assert [r["ok"] for r in report] == [False, True]
        assert report[0]["diagnostics"][0]["path"] == "states.discovered.deadline.within"

    def test_missing_file_is_an_error_not_a_traceback(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        assert main(["validate", str(tmp_path / "nope.yaml")]) == 1
        assert "cannot read file" in capsys.readouterr().err

    def test_usage_error_exits_2(self) -> None:
        with pytest.raises(SystemExit) as info:
            main(["graph", str(MINIMAL), "--format", "png"])
        assert info.value.code == 2

    def test_graph_of_a_broken_file_fails(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["graph", str(DATA / "broken" / "bad_duration.yaml")]) == 1
        assert "has errors" in capsys.readouterr().err

    def test_schema_prints_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["schema"]) == 0
        assert json.loads(capsys.readouterr().out)["title"] == "gengbao workflow definition"

    def test_working_days_into_an_unannounced_year_warn(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        bundled = str(ROOT / "workflows" / "farmland_violation.yaml")
        assert main(["--now", "2026-09-18T09:00:00+08:00", "validate", bundled]) == 0
        assert "warning" not in capsys.readouterr().err
        assert main(["--now", "2026-12-20T09:00:00+08:00", "validate", bundled]) == 0
        err = capsys.readouterr().err
        assert "warning: states.town_handling.deadline.within" in err
        assert "no official holiday arrangement for 2027" in err

    def test_console_script_runs(self) -> None:
        script = Path(sys.executable).parent / "gengbao"
        done = subprocess.run(
            [str(script), "graph", str(MINIMAL), "--format", "mermaid"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("stateDiagram-v2")
