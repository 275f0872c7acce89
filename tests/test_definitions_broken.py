"""Data-driven: every file in data/broken/ has one mistake and names the error it expects.

The last lines of each file say ``# expect: LINE:COL FRAGMENT``; the validator
must report an error at that position whose text contains the fragment
(``*`` for the position means any).  The base they were made from,
data/valid/minimal.yaml, must itself validate cleanly.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.definitions import validate_file
from notifications.templates import TemplateStore

DATA = Path(__file__).parent / "data"
BROKEN = sorted((DATA / "broken").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\*|\d+:\d+) (.+)$", re.MULTILINE)
STORE = TemplateStore([DATA / "templates"])


def expectations(path: Path) -> list[tuple[str, str]]:
    found = EXPECT.findall(path.read_text(encoding="utf-8"))
    assert found, f"{path.name} has no '# expect:' line"
    return found


def test_the_base_is_valid() -> None:
    result = validate_file(DATA / "valid" / "minimal.yaml", STORE.check)
    assert result.diagnostics == []
    assert result.ok


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_file_reports_its_error(path: Path) -> None:
    result = validate_file(path, STORE.check)
    assert not result.ok
    errors = [(f"{d.line}:{d.column}", str(d)) for d in result.errors]
    for where, fragment in expectations(path):
        matching = [text for pos, text in errors if fragment in text and where in ("*", pos)]
        assert matching, f"expected {where} {fragment!r}; got:\n" + "\n".join(t for _, t in errors)
        assert all(text.startswith(f"{path}:") for text in matching)


def test_the_fixture_folder_covers_many_mistakes() -> None:
    assert len(BROKEN) >= 30


def test_final_yes_is_the_only_error_it_causes(tmp_path: Path) -> None:
    """``final: yes`` is reported once, with the fix; no follow-on state-graph errors."""
    base = (DATA / "valid" / "minimal.yaml").read_text(encoding="utf-8")
    path = tmp_path / "final_yes.yaml"
    path.write_text(base.replace("final: true", "final: yes"), encoding="utf-8")
    result = validate_file(path, STORE.check)
    assert [d.message for d in result.diagnostics] == [
        "expected true or false, got text ('yes'); write true ('yes' is text in gengbao files)"
    ]
