"""Triggers for the hot path: the grid stamp, and the outbox's NOTIFY on PostgreSQL.

**The grid stamp**: a number that changes whenever units, people or roles change.

The case service caches what an actor holds on the grid, per process, keyed by
this stamp (read in the same statement that locks the case), so an event needs
no query for the actor's roles while the grid stands still.  Triggers on
``units``, ``people`` and ``person_roles`` bump it in the writing transaction,
so every writer — ``grid load``, ``grid remove``, or an operator's own SQL
(PostgreSQL: ``TRUNCATE`` too) — invalidates every process's cache when it
commits.  Without the row (deleted by hand) nothing is cached: always correct.

**The outbox's wake-up** (PostgreSQL): a statement trigger on ``notifications``
sends ``NOTIFY gengbao_outbox`` for every insert, delivered on commit (and
once per transaction: PostgreSQL folds identical notifications), so the
enqueueing transaction needs no statement of its own for it
(:mod:`notifications.wakeup`).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GRID_TABLES = ("units", "people", "person_roles")
NOTIFY_CHANNEL = "gengbao_outbox"  # notifications.wakeup.NOTIFY_CHANNEL, frozen here
OPERATIONS = ("INSERT", "UPDATE", "DELETE")


def upgrade() -> None:
    op.create_table(
        "grid_stamp",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_grid_stamp"),
        sa.CheckConstraint("id = 1", name="ck_grid_stamp_one_row"),
    )
    op.execute("INSERT INTO grid_stamp (id, version) VALUES (1, 1)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION bump_grid_stamp() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN UPDATE grid_stamp SET version = version + 1; RETURN NULL; END $$"
        )
        for table in GRID_TABLES:
            op.execute(
                f"CREATE TRIGGER trg_{table}_grid_stamp "
                f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION bump_grid_stamp()"
            )
        op.execute(
            "CREATE FUNCTION notify_outbox() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM pg_notify('{NOTIFY_CHANNEL}', ''); RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER trg_notifications_notify AFTER INSERT ON notifications "
            "FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox()"
        )
        return
    for table in GRID_TABLES:  # SQLite has row triggers only
        for operation in OPERATIONS:
            op.execute(
                f"CREATE TRIGGER trg_{table}_{operation.lower()}_grid_stamp "
                f"AFTER {operation} ON {table} "
                "BEGIN UPDATE grid_stamp SET version = version + 1; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trg_notifications_notify ON notifications")
        op.execute("DROP FUNCTION IF EXISTS notify_outbox()")
        for table in GRID_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_grid_stamp ON {table}")
        op.execute("DROP FUNCTION IF EXISTS bump_grid_stamp()")
    else:
        for table in GRID_TABLES:
            for operation in OPERATIONS:
                op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_{operation.lower()}_grid_stamp")
    op.drop_table("grid_stamp")
