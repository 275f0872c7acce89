"""Finding shapes: ``survey_findings.geometry``, a GeoJSON Point, Polygon or MultiPolygon.

A finding with a shape is found by the grid when a case's geometry intersects it
(:mod:`engine.assessment.overlaps`), beside the reference and 50 m rules.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.add_column("survey_findings", sa.Column("geometry", json, nullable=True))


def downgrade() -> None:
    op.drop_column("survey_findings", "geometry")  # SQLite ≥ 3.35 drops a column in place
