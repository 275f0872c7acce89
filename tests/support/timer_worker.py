"""A timer sweeper that dies (or pauses) in the middle of a sweep; tests run it as a process.

    python tests/support/timer_worker.py URL NOW K exit|block|pause

Builds an App on *URL* with a fixed clock at *NOW* (ISO 8601 with offset) and
wraps this process's ``TimerService._fire`` so that right after the K-th timer
fired — its effects planned or written, its transaction not yet committed — it prints
``{"fired_before_crash": [ids]}`` (every timer it fired, in all batches so far,
committed or not) on one line and then:

- ``exit``: calls ``os._exit(9)``: a crash with no cleanup, no rollback sent;
- ``block``: waits on stdin with its transaction open until the parent kills
  it (SIGKILL); should stdin close instead, it exits 9 all the same;
- ``pause``: waits on stdin for a line with its transaction open, then
  carries on with the sweep.

When the sweep completes it prints ``{"completed": N}`` and exits 0.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from engine.app import App
from engine.clock import FixedClock
from engine.settings import Settings
from engine.timers import Fired, TimerService

CRASH_STATUS = 9


def main(argv: list[str]) -> int:
    url, now_text, k_text, mode = argv
    if mode not in ("exit", "block", "pause"):
        raise SystemExit(f"mode must be exit, block or pause, not {mode!r}")
    crash_after = int(k_text)
    clock = FixedClock(dt.datetime.fromisoformat(now_text))
    app = App(Settings(database_url=url, workflows_dir=Path("workflows")), clock)
    service = app.timers
    original = TimerService._fire
    fired: list[int] = []

    def fire_then_maybe_die(conn: Connection, timer: Any, now: dt.datetime, *rest: Any) -> Fired:
        result = original(service, conn, timer, now, *rest)
        fired.append(result.timer_id)
        if len(fired) == crash_after:
            sys.stdout.write(json.dumps({"fired_before_crash": fired}) + "\n")
            sys.stdout.flush()
            if mode == "exit":
                os._exit(CRASH_STATUS)
            resumed = sys.stdin.readline()  # blocks until the parent writes (or kills)
            if mode == "block" or not resumed:
                os._exit(CRASH_STATUS)  # never commit
        return result

    setattr(service, "_fire", fire_then_maybe_die)  # noqa: B010 (this process only)
    try:
        done = service.run_due()
    finally:
        app.close()
    sys.stdout.write(json.dumps({"completed": len(done)}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
