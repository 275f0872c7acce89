"""The README's pictures of the pages: every one it names is in ``docs/screenshots/``,
is a PNG, and is one that ``make screenshots`` takes (``tests/support/screenshots.py``),
so a renamed or dropped shot cannot leave the README pointing at nothing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "docs" / "screenshots"


def test_every_picture_the_readme_names_is_there_and_is_taken_by_make_screenshots() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"docs/screenshots/([\w-]+)\.png", readme))
    walk = (ROOT / "tests" / "support" / "screenshots.py").read_text(encoding="utf-8")
    taken = set(re.findall(r'snap\("([\w-]+)"', walk))
    committed = {p.stem for p in FOLDER.glob("*.png")}
    assert named, "the README shows no page"
    assert named <= taken, f"not taken by make screenshots: {sorted(named - taken)}"
    assert named == committed, (sorted(named - committed), sorted(committed - named))
    for name in named:
        assert (FOLDER / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
