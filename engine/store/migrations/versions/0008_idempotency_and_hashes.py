"""History rows record the hash scheme they were hashed with (rows so far: scheme 1).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every existing row was hashed with scheme 1 (engine/cases/history.py).
    op.add_column(
        "history",
        sa.Column("hash_scheme", sa.Integer(), nullable=False, server_default=sa.text("1")),
    )


def downgrade() -> None:
    with op.batch_alter_table("history") as batch:
        batch.drop_column("hash_scheme")
