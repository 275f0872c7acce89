"""Workflow activations (which version is current, and since when) and system values
(the calendar fingerprint pending timers were computed from).

Every existing version gets one activation at its ``loaded_at``, in version
order, so the current version stays the newest one until something is
re-activated.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workflow_activations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow", sa.Text(), nullable=False),
        sa.Column("definition_id", sa.Integer(), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("path", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_workflow_activations"),
        sa.ForeignKeyConstraint(
            ["definition_id"],
            ["workflow_versions.id"],
            name="fk_workflow_activations_definition_id_workflow_versions",
        ),
    )
    op.create_index("ix_workflow_activations_workflow", "workflow_activations", ["workflow"])
    op.execute(
        "INSERT INTO workflow_activations (workflow, definition_id, activated_at, path) "
        "SELECT workflow, id, loaded_at, path FROM workflow_versions ORDER BY workflow, version"
    )
    op.create_table(
        "system_values",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_system_values"),
    )


def downgrade() -> None:
    op.drop_table("system_values")
    op.drop_table("workflow_activations")
