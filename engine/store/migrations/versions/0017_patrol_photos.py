"""Patrol photos: ``patrol_photos`` (patrol, SHA-256, size, media type, who, when); the
files themselves are content-addressed under ``data_dir/photos``.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "patrol_photos",
        sa.Column("patrol_id", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.Text(), nullable=False),
        sa.Column("uploaded_by", sa.Text(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patrol_id"], ["patrols.id"], name="fk_patrol_photos_patrol_id_patrols"
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by"], ["people.id"], name="fk_patrol_photos_uploaded_by_people"
        ),
        sa.PrimaryKeyConstraint("patrol_id", "sha256", name="pk_patrol_photos"),
    )
    op.create_index("ix_patrol_photos_sha256", "patrol_photos", ["sha256"])


def downgrade() -> None:
    op.drop_index("ix_patrol_photos_sha256", table_name="patrol_photos")
    op.drop_table("patrol_photos")
