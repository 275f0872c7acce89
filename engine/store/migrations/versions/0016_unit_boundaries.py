"""Unit boundaries: ``units.boundary``, a GeoJSON Polygon or MultiPolygon (lng/lat).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    # A plain ADD COLUMN (no table copy): the grid-stamp triggers on units stay.
    op.add_column("units", sa.Column("boundary", json, nullable=True))


def downgrade() -> None:
    op.drop_column("units", "boundary")  # SQLite ≥ 3.35 drops a column in place
