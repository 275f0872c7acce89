"""Which writes wait for the disk: a case's change always; the dispatcher's bookkeeping
(expansions, claims, send outcomes), which is redone safely if lost, does not
(``engine.store.db.lazy_commit``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from engine.app import App
from engine.store import transaction
from engine.store.db import LAZY_COMMIT_OPTION, READ_ONLY_OPTION, lazy_commit
from tests.support.farmland import LIFECYCLE, open_case


def _durability(conn: sa.Connection) -> str:
    """The commit durability in force for *conn*'s transaction."""
    if conn.dialect.name == "sqlite":
        level = conn.exec_driver_sql("PRAGMA synchronous").scalar_one()
        return {1: "normal", 2: "full", 3: "extra"}[level]
    return str(conn.exec_driver_sql("SHOW synchronous_commit").scalar_one())


def test_a_lazy_transaction_skips_the_wait_and_the_next_one_waits_again(engine: sa.Engine) -> None:
    sqlite = engine.dialect.name == "sqlite"
    lazy_name, durable_name = ("normal", "full") if sqlite else ("off", "on")
    seen = []
    for view in (engine, lazy_commit(engine), engine, lazy_commit(engine), engine):
        with transaction(view) as conn:
            seen.append(_durability(conn))
    assert seen == [durable_name, lazy_name, durable_name, lazy_name, durable_name]


def _record_begins(engine: sa.Engine, into: list[bool]) -> Any:
    def on_begin(conn: sa.Connection) -> None:
        options = conn.get_execution_options()
        if not options.get(READ_ONLY_OPTION, False):
            into.append(bool(options.get(LAZY_COMMIT_OPTION, False)))

    sa.event.listen(engine, "begin", on_begin)
    return on_begin


def test_a_cases_change_waits_for_the_disk_and_the_dispatchers_bookkeeping_does_not(
    app: App,
) -> None:
    case_id = open_case(app)
    trigger, actor, payload, _ = LIFECYCLE[0]
    event_writes: list[bool] = []
    listener = _record_begins(app.engine, event_writes)
    try:
        app.cases.submit_event(case_id, trigger, actor, payload)  # queues notifications
    finally:
        sa.event.remove(app.engine, "begin", listener)
    dispatch_writes: list[bool] = []
    listener = _record_begins(app.engine, dispatch_writes)
    try:
        sent = app.dispatcher.run_once()
    finally:
        sa.event.remove(app.engine, "begin", listener)
    assert sent and {s.status for s in sent} == {"sent"}
    assert event_writes and not any(event_writes)  # every write of the event is durable
    assert dispatch_writes and all(dispatch_writes)  # expand, claim, outcomes: lazy
