"""A dispatch pass costs the same with a long history of sent messages as with none.

The work is counted in SQLite virtual-machine steps (a progress handler called
every few instructions), not in time: the backlog probes and the claims must
read the index range of the rows still to send, never every row a channel
ever sent.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from engine.app import App
from engine.store.tables import deliveries
from tests.support.farmland import LIFECYCLE, open_case

STEP = 10  # VM instructions per progress-handler call
HISTORY = 3_000  # sent deliveries added to the table


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the count is SQLite's; PostgreSQL plans the same conditions on its own


class VmSteps:
    """SQLite VM instructions run on *engine*'s connections while counting."""

    def __init__(self, engine: sa.Engine) -> None:
        self.calls = 0
        self.counting = False
        sa.event.listen(engine, "checkout", self._on_checkout)
        engine.dispose()  # every later connection is checked out through the listener

    def _on_checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.set_progress_handler(self._tick, STEP)

    def _tick(self) -> int:
        if self.counting:
            self.calls += 1
        return 0

    def of(self, work: Any) -> int:
        self.calls, self.counting = 0, True
        try:
            work()
        finally:
            self.counting = False
        return self.calls * STEP


def _grow_history(app: App, copies: int) -> None:
    """*copies* more sent deliveries on every channel, as a long-running service has."""
    d = deliveries.c
    columns = [c for c in deliveries.c if c.name != "id"]
    with app.engine.begin() as conn:
        sent = conn.execute(sa.select(*columns).where(d.status == "sent")).mappings().all()
        assert sent, "the event should have sent something"
        rows = [
            {**row, "dedupe_key": f"{row['dedupe_key']}:history:{n}"}
            for n in range(copies // len(sent) + 1)
            for row in sent
        ]
        conn.execute(sa.insert(deliveries), rows)


def test_a_pass_does_not_read_the_sent_history(app: App) -> None:
    case_id = open_case(app)
    trigger, actor, payload, _ = LIFECYCLE[0]
    app.cases.submit_event(case_id, trigger, actor, payload)
    assert app.dispatcher.run_once()  # sent: the table now holds a short history
    channels = sorted(app.dispatcher.channels)
    steps = VmSteps(app.engine)

    def one_pass() -> None:
        app.dispatcher.backlog()
        for channel in channels:
            app.dispatcher.claim(channel)

    before = steps.of(one_pass)
    _grow_history(app, HISTORY)
    after = steps.of(one_pass)
    # Before the fix a pass read every sent row of each channel: ~40× more steps here.
    assert after < 2 * before, f"{before} VM steps with a short history, {after} with a long one"
