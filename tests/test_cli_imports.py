"""What the CLI loads before it does anything: ``gengbao --help`` and ``gengbao validate``.

Every ``gengbao`` run builds the whole parser first, so a command module that
imports a service at module level makes every command pay for it (SQLAlchemy,
FastAPI, APScheduler, … were once 0.4 s of ``gengbao --help``).  Each case runs
in a fresh interpreter and reports the modules it loaded; nothing is timed
(``bench/cli.py`` prints the times).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import build_parser
from engine.cli.patrols import DEFAULT_SOURCE

ROOT = Path(__file__).resolve().parent.parent

# Libraries no parser needs.  The command modules import them inside their handlers.
HEAVY = (
    "alembic",
    "apscheduler",
    "chinese_calendar",
    "fastapi",
    "httpx",
    "jinja2",
    "openpyxl",
    "psycopg",
    "sqlalchemy",
    "starlette",
    "transitions",
    "uvicorn",
    "yaml",
)
# What checking workflow files has no use for: the HTTP stack, the storage, the loops.
NOT_FOR_VALIDATE = (
    "alembic",
    "apscheduler",
    "fastapi",
    "openpyxl",
    "psycopg",
    "sqlalchemy",
    "starlette",
    "uvicorn",
)
# What ``gengbao validate`` still loads of NOT_FOR_VALIDATE, each with why.  Keep it
# empty; the test fails on any other library and on an entry no longer loaded, so
# the list only shrinks.
VALIDATE_NOT_YET: dict[str, str] = {}  # none left: validate loads no storage

_PROBE = """
import json, sys
from engine.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
print("\\n@@modules " + json.dumps({"exit": code, "modules": sorted(sys.modules)}))
"""


def loaded(*argv: str) -> tuple[int, set[str], str, str]:
    """Run ``gengbao ARGV`` in a fresh interpreter in the repository: its exit status,
    the top-level packages it had loaded at the end, its stdout and its stderr."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output, _, report = done.stdout.rpartition("\n@@modules ")
    assert report, done.stderr
    found = json.loads(report)
    return found["exit"], {m.split(".")[0] for m in found["modules"]}, output, done.stderr


def test_help_loads_none_of_the_services_libraries() -> None:
    code, modules, output, _ = loaded("--help")
    assert code == 0
    assert "validate" in output and "serve" in output
    assert sorted(modules & set(HEAVY)) == []


@pytest.mark.parametrize("group", ["case", "timers", "report", "survey"])
def test_a_groups_help_loads_none_of_them_either(group: str) -> None:
    code, modules, output, _ = loaded(group, "--help")
    assert code == 0
    assert f"usage: gengbao {group}" in output
    assert sorted(modules & set(HEAVY)) == []


def test_validate_loads_no_server_storage_or_scheduler() -> None:
    code, modules, output, errors = loaded("validate", "workflows/farmland_violation.yaml")
    assert (code, errors) == (0, "")
    assert "ok: farmland_violation" in output
    still = sorted(modules & set(NOT_FOR_VALIDATE))
    assert still == sorted(VALIDATE_NOT_YET), "loaded now; VALIDATE_NOT_YET must list exactly these"


def _option(path: tuple[str, ...], flag: str) -> argparse.Action:
    parser = build_parser()
    for name in path:
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = commands.choices[name]
    return next(a for a in parser._actions if flag in a.option_strings)


def test_choices_loaded_on_first_use_are_the_services_own() -> None:
    from engine.assessment import FORMATS
    from engine.cases.imports import FORMATS as IMPORT_FORMATS
    from engine.grid.parse import LEVELS
    from engine.patrols.survey import SOURCES
    from engine.timers.ledger import STATUSES

    assert tuple(_option(("timers", "list"), "--status").choices or ()) == STATUSES
    assert tuple(_option(("report", "assessment"), "--level").choices or ()) == LEVELS
    assert tuple(_option(("report", "assessment"), "--format").choices or ()) == FORMATS
    assert tuple(_option(("case", "import"), "--format").choices or ()) == IMPORT_FORMATS
    source = _option(("survey", "import"), "--source")
    assert tuple(source.choices or ()) == SOURCES
    assert source.default == DEFAULT_SOURCE == SOURCES[0]


def test_a_value_outside_them_is_refused_with_the_list() -> None:
    code, _, _, errors = loaded("timers", "list", "--status", "stale")
    assert code == 2
    assert "argument --status: invalid choice: 'stale' (choose from 'pending', " in errors


def test_the_table_of_groups_is_what_each_module_registers() -> None:
    import importlib

    from engine.cli import GROUPS

    for name, commands in GROUPS.items():
        parser = argparse.ArgumentParser()
        subparsers = parser.add_subparsers()
        importlib.import_module(f"engine.cli.{name}").add_commands(subparsers)
        assert tuple(subparsers.choices) == commands, name
    every = [c for commands in GROUPS.values() for c in commands]
    whole = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(whole.choices) == every


def test_a_command_imports_only_the_module_that_registers_it() -> None:
    for argv in (["validate", "x.yaml"], ["--now", "2026-09-18T09:00:00+08:00", "validate"]):
        code, _, _, _ = loaded(*argv, "--help")
        assert code == 0
    probe = (
        "import sys; from engine.cli import main\n"
        "try: main(sys.argv[1:])\nexcept SystemExit: pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('engine.cli.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "--config=x.yaml", "validate", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "['engine.cli.common', 'engine.cli.definitions']"


def test_a_mistyped_command_is_answered_by_the_whole_parser() -> None:
    code, _, _, errors = loaded("validat", "x.yaml")
    assert code == 2
    assert "invalid choice: 'validat'" in errors and "'report'" in errors
