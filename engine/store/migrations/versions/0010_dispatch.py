"""Dispatch: a priority on notifications and deliveries (urgent first), and an
index for claiming each channel's due deliveries on its own.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _priority() -> sa.Column[int]:
    return sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(_priority())
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(_priority())
    op.create_index(
        "ix_deliveries_channel_status_next_attempt_at",
        "deliveries",
        ["channel", "status", "next_attempt_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_channel_status_next_attempt_at", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("priority")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("priority")
