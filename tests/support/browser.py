"""A real browser for the page tests: Playwright driving Debian's Chromium.

``playwright install`` downloads browsers, which the machines running these tests
cannot; Debian's ``chromium`` package (``apt-get install -y chromium``, done by
``.ci/run`` when it is missing) is driven instead, at :data:`CHROMIUM`.  Where it
is absent the browser tests skip, saying so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ViewportSize

__all__ = ["CHROMIUM", "PHONE", "chromium", "skip_without_chromium"]

CHROMIUM = Path(os.environ.get("GENGBAO_CHROMIUM", "/usr/bin/chromium"))
PHONE: ViewportSize = {"width": 360, "height": 740}  # the narrowest phone the pages serve


def skip_without_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(
            f"browser tests need Chromium at {CHROMIUM} (apt-get install -y chromium; "
            "GENGBAO_CHROMIUM names another)"
        )


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for a whole test module."""
    skip_without_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            browser.close()
