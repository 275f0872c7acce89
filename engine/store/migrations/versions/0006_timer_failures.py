"""Timer failure records: what firing did (detail), attempts, last error, next attempt.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")
FAILED = sa.text("status = 'failed'")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    # SQLite rebuilds the table in batch mode; the partial index is recreated
    # by hand so its WHERE clause survives the copy.
    op.drop_index("ix_timers_pending_due", table_name="timers")
    with op.batch_alter_table("timers") as batch:
        batch.add_column(sa.Column("detail", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(_ts("next_attempt_at", nullable=True))
    op.create_index(
        "ix_timers_pending_due",
        "timers",
        ["due_at"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_index(
        "ix_timers_failed_next_attempt",
        "timers",
        ["next_attempt_at"],
        sqlite_where=FAILED,
        postgresql_where=FAILED,
    )


def downgrade() -> None:
    op.drop_index("ix_timers_failed_next_attempt", table_name="timers")
    op.drop_index("ix_timers_pending_due", table_name="timers")
    with op.batch_alter_table("timers") as batch:
        for column in ("next_attempt_at", "last_error", "attempts", "detail"):
            batch.drop_column(column)
    op.create_index(
        "ix_timers_pending_due",
        "timers",
        ["due_at"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
