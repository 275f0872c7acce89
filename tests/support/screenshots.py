"""``make screenshots``: a PNG of each page for duty staff, under ``var/screenshots/``.

``python -m tests.support.screenshots [FOLDER]`` starts a ``gengbao serve`` on a
fresh SQLite database in a temporary folder (the demo grid, the bundled workflow),
sets two passwords with the CLI, opens a case over the API as the group's 网格员
(stopped without success), and walks the pages in Chromium at the width of a phone
(360 px): sign-in, my tasks, the case page, a refused form, the case after acting,
the next holder's tasks on a desktop, the overdue board, a patrol recorded with a
photo and the assessment dashboard.  Needs Chromium
(``/usr/bin/chromium``) and, for the Chinese text, a CJK font.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.api_server import ApiServer
from tests.support.browser import CHROMIUM, PHONE
from tests.support.farmland import REPORTER, ROOT
from tests.support.images import png
from tests.support.pages import LEADER, TOWN, open_case, set_passwords, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import FilePayload, Page, ViewportSize

__all__ = ["main", "shoot"]

DESKTOP: ViewportSize = {"width": 1280, "height": 900}


def shoot(folder: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="gb-shots-") as work:
        server = ApiServer(f"sqlite:///{work}/gengbao.db", Path(work))
        try:
            server.start()
            set_passwords(server, LEADER, TOWN)
            case = open_case(server, server.token(REPORTER), party="王某（待核实）")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
                phone = browser.new_page(viewport=PHONE, locale="zh-CN")

                def snap(name: str, page: Page = phone) -> None:
                    target = folder / f"{name}.png"
                    page.screenshot(path=str(target), full_page=True)
                    written.append(target)

                phone.goto(f"{server.base_url}/ui/cases/{case}")  # the message's link
                snap("1-login")
                sign_in(phone, LEADER)
                phone.goto(f"{server.base_url}/ui/tasks")
                snap("2-tasks")
                phone.goto(f"{server.base_url}/ui/cases/{case}")
                snap("3-case")
                form = phone.locator("form[data-trigger=report]")
                form.locator("textarea[name=f_photos]").fill("现场照片-001")
                form.locator("button[type=submit]").click()
                snap("4-refused-form")
                form = phone.locator("form[data-trigger=report]")
                form.locator("textarea[name=f_report_note]").fill("制止无效，报告八桥镇")
                form.locator("button[type=submit]").click()
                snap("5-after-acting")
                phone.goto(f"{server.base_url}/ui/board?unit=ddk-bq")
                snap("7-board")
                desk = browser.new_page(viewport=DESKTOP, locale="zh-CN")
                desk.goto(f"{server.base_url}/ui/login")
                sign_in(desk, TOWN)
                snap("6-next-holder-tasks-desktop", desk)
                server.cli("patrol", "rules", "load", str(ROOT / "config" / "patrols.yaml"))
                phone.goto(f"{server.base_url}/ui/patrols")  # 巡查: a patrol with a photo
                phone.select_option("#patrol-unit", "ddk-bq-xh")
                phone.fill("#patrol-route", "新华村一组—二组水库")
                phone.fill("#patrol-findings", "二组水库边有新开挖痕迹，约 200 平方米")
                field = png((60, 130, 80), 96, 72)
                shot: FilePayload = {
                    "name": "IMG_0001.png",
                    "mimeType": "image/png",
                    "buffer": field,
                }
                phone.set_input_files("#patrol-photos", [shot])
                phone.click("#patrol-form button[type=submit]")
                snap("8-patrols")
                phone.goto(f"{server.base_url}/ui/assessment")
                snap("9-assessment")
                browser.close()
        finally:
            server.close()
    return written


def main(argv: list[str]) -> int:
    if not CHROMIUM.exists():
        print(f"screenshots: need Chromium at {CHROMIUM} (apt-get install -y chromium)")
        return 1
    for path in shoot(Path(argv[0] if argv else "var/screenshots")):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
