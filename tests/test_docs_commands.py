"""Every command the README and the docs show is run, as shown, in order.

Each document is one shell session (``bash``) in a fresh working directory
holding copies of ``workflows/``, ``config/`` and ``docs/``, with the
virtual environment's ``gengbao`` first on ``PATH``.  What each command must
do follows from what the document shows:

- ``gengbao …`` exits 0; when the document shows ``error:`` lines after it,
  it exits 1 and prints each of them; an ``ok:`` line shown is printed.
- ``curl …``: every ``"error"`` and ``"state"`` value the document shows is
  in the answer (the rest of a shown answer is trimmed or varies: ids, times).
- any other command with output shown (``echo``, ``kill``) prints exactly it.
- nothing prints a Python traceback.

Commands that cannot run as shown are listed in :data:`NOT_RUN` with the
reason, and ids that are only examples in :data:`EXAMPLE_IDS` (they must be
refused with a clear error).  The ports shown (8000, 8080) are replaced by
free ones and ``0.0.0.0`` by ``127.0.0.1``; ``sleep N;`` in front of a
command is dropped (it waits for a person reading along, not for a check);
``make`` runs with this suite's virtual environment and never rebuilds it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCS = (
    "README.md",
    "docs/api.md",
    "docs/patrols-and-assessment.md",
    "docs/workflow-format.md",
    "docs/notifications.md",
    "config/calendars/README.md",
)
SHELL_BLOCKS = {"sh", "console", "bash", "shell"}

NOT_RUN = {
    "make test": "this suite is what it runs",
    "make screenshots": "drives Chromium with the test support, which the session's copy lacks; "
    "tests/test_pages_browser.py walks the same pages",
    "gengbao report assessment --from DATE --to DATE": "a synopsis, not a command",
}
# Ids in the docs that stand for "an id you have": refused with this message.
EXAMPLE_IDS = {
    "gengbao timers retry 42": "timer 42",
    "gengbao notifications retry 42": "42",
    "gengbao token revoke 9675c45127": "9675c45127",
}
# Commands that run in the foreground until stopped: stopped with SIGTERM.
FOREGROUND = ("gengbao worker", "gengbao serve", "make run")
PAIRS = re.compile(r'"(error|state)"\s*:\s*"([^"]*)"')
MARK = "@@gengbao-docs"


@dataclass(frozen=True)
class Shown:
    """One command as a document shows it."""

    doc: str
    line: int
    command: str
    output: tuple[str, ...]

    def where(self) -> str:
        return f"{self.doc}:{self.line}: {self.command}"


def shown_commands(doc: str) -> list[Shown]:
    """The commands of *doc*'s shell blocks, continuation lines joined."""
    lines = (ROOT / doc).read_text(encoding="utf-8").splitlines()
    found: list[Shown] = []
    block: str | None = None
    i = 0
    while i < len(lines):
        text = lines[i]
        if text.startswith("```"):
            block = None if block is not None else (text[3:].strip() or "text")
            i += 1
            continue
        if block not in SHELL_BLOCKS:
            i += 1
            continue
        start = i
        console = block == "console"
        if console and not text.startswith("$ "):
            i += 1
            continue
        command = text[2:] if console else text
        while i + 1 < len(lines) and (command.endswith("\\") or _open_quote(command)):
            i += 1
            if command.endswith("\\"):
                command = command[:-1].rstrip() + " " + lines[i].strip()
            else:  # a quoted argument that goes on on the next line
                command += "\n" + lines[i]
        i += 1
        output: list[str] = []
        while console and i < len(lines) and not lines[i].startswith(("$ ", "```")):
            if lines[i].strip():
                output.append(lines[i])
            i += 1
        command = command.strip()
        if command and not command.startswith("#"):
            found.append(Shown(doc, start + 1, command, tuple(output)))
    return found


def _open_quote(command: str) -> bool:
    try:
        shlex.split(command, comments=True)
    except ValueError:
        return True
    return False


def _skipped(command: str) -> str | None:
    return next((why for prefix, why in NOT_RUN.items() if command.startswith(prefix)), None)


def test_the_docs_show_commands_and_every_exception_is_still_shown() -> None:
    every = [s.command for doc in DOCS for s in shown_commands(doc)]
    assert len(every) > 80, every  # the parser sees the sessions
    for listed in (*NOT_RUN, *EXAMPLE_IDS):
        assert any(c.startswith(listed) for c in every), f"stale exception: {listed!r}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _workdir(tmp: Path, port: int) -> Path:
    """A directory laid out like a checkout, for a session to run in."""
    for name in ("workflows", "config", "docs"):
        shutil.copytree(ROOT / name, tmp / name)
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy2(ROOT / name, tmp / name)  # keeps mtimes: make sees the venv as current
    (tmp / ".venv").symlink_to(Path(sys.prefix))
    with (tmp / "config" / "gengbao.yaml").open("a", encoding="utf-8") as f:
        f.write(f"\nserve: {{port: {port}}}\n")
    return tmp


def _as_run(command: str, ports: dict[str, str]) -> str:
    command = re.sub(r"^sleep \d+;\s*", "", command)
    for shown, real in ports.items():
        command = command.replace(shown, real)
    command = command.replace("0.0.0.0", "127.0.0.1")
    foreground = command.startswith(FOREGROUND) and not command.rstrip().endswith("&")
    name = command.split()[1] if foreground else ""
    # The session borrows this suite's virtual environment: make must never rebuild it
    # (an editable install from the session's folder would point the venv there).
    command = re.sub(r"^make (\w+)", r"make -o .venv/.installed \1", command)
    if foreground:
        port = re.search(r"--port (\d+)", command)
        return f"foreground {name} {port.group(1) if port else ports['8000']} {command}"
    return command


PRELUDE = r"""
exec 2>&1
foreground() {  # start a long-running command, wait until it serves, stop it with SIGTERM
  local name=$1 port=$2; shift 2
  setsid "$@" > "fg-$name.log" 2>&1 &
  local pid=$!
  if [ "$name" = worker ]; then
    for _ in $(seq 100); do grep -q . "fg-$name.log" && break; sleep 0.1; done
  else
    curl -s -o /dev/null --retry 60 --retry-connrefused --retry-delay 1 "http://127.0.0.1:$port/readyz"
  fi
  if [ "$name" = run ]; then echo "$pid" > make-run.pid; return 0; fi
  kill -TERM "$pid"; wait "$pid"; local status=$?
  cat "fg-$name.log"; return $status
}
stop_make_run() { [ -f make-run.pid ] && kill -TERM -- "-$(cat make-run.pid)" 2>/dev/null; true; }
trap stop_make_run EXIT
"""


def _script(commands: list[Shown], ports: dict[str, str]) -> str:
    parts = [PRELUDE, f"PORT={ports['8000']}"]
    for n, s in enumerate(commands):
        parts.append(f"echo '{MARK} begin {n}'")
        parts.append(_as_run(s.command, ports))
        parts.append(f"_status=$?; printf '\\n{MARK} end {n} %s\\n' $_status")
    return "\n".join(parts) + "\n"


def _results(out: str) -> dict[int, tuple[int, str]]:
    found: dict[int, tuple[int, str]] = {}
    pattern = re.compile(
        rf"^{MARK} begin (\d+)\n(.*?)^{MARK} end \1 (\d+)$", re.MULTILINE | re.DOTALL
    )
    for m in pattern.finditer(out):
        found[int(m.group(1))] = (int(m.group(3)), m.group(2))
    return found


def _problems(s: Shown, status: int, out: str) -> list[str]:
    if "Traceback (most recent call last)" in out:
        return [f"printed a traceback:\n{out}"]
    example = next((m for c, m in EXAMPLE_IDS.items() if s.command.startswith(c)), None)
    if example is not None:
        if status != 1 or example not in out or len(out.strip().splitlines()) != 1:
            return [f"expected one error line naming {example!r}, exit 1; got {status}:\n{out}"]
        return []
    words = re.sub(r"^sleep \d+;\s*", "", s.command).split()  # as _as_run runs it
    program = words[0] if words else ""
    problems: list[str] = []
    if program in ("gengbao", "make") or "$(gengbao " in s.command:
        errors = [line.rstrip(" .…") for line in s.output if " error: " in line]
        wanted = 1 if errors else 0
        if status != wanted:
            problems.append(f"exit status {status}, expected {wanted}:\n{out}")
        for line in errors + [line for line in s.output if ": ok: " in line]:
            shown = line.removesuffix("...").rstrip()
            if shown not in out:
                problems.append(f"does not print {shown!r}:\n{out}")
    elif program == "curl":
        if status != 0:
            problems.append(f"curl exit status {status}:\n{out}")
        shown_pairs = set(PAIRS.findall("\n".join(s.output)))
        missing = shown_pairs - set(PAIRS.findall(out))
        if missing:
            problems.append(f"the answer lacks {sorted(missing)}:\n{out}")
    else:
        if status != 0:
            problems.append(f"exit status {status}:\n{out}")
        for line in s.output:
            if line.strip() not in out:
                problems.append(f"does not print {line.strip()!r}:\n{out}")
    return problems


@pytest.mark.parametrize("doc", DOCS)
def test_every_command_a_document_shows_runs_as_shown(doc: str, tmp_path: Path) -> None:
    commands = [s for s in shown_commands(doc) if _skipped(s.command) is None]
    if not commands:
        pytest.skip(f"{doc} shows no command")
    ports = {"8000": str(_free_port()), "8080": str(_free_port())}
    work = _workdir(tmp_path, int(ports["8000"]))
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("GENGBAO_") or k == "GENGBAO_DEBUG"
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["TZ"] = "UTC"
    done = subprocess.run(
        ["bash", "-c", _script(commands, ports)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    results = _results(done.stdout)
    problems: list[str] = []
    for n, s in enumerate(commands):
        if n not in results:
            problems.append(f"{s.where()}\n  did not finish; stderr:\n{done.stderr[-2000:]}")
            break
        status, out = results[n]
        problems += [f"{s.where()}\n  {p}" for p in _problems(s, status, out)]
    (tmp_path / "session.log").write_text(done.stdout, encoding="utf-8")
    assert not problems, "\n\n".join([*problems, f"(the whole session: {tmp_path}/session.log)"])
