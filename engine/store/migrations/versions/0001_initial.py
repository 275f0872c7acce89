"""Initial schema: grid registry, workflow versions, cases and their history.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRUE = sa.text("true")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "units",
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("parent_code", sa.Text(), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=TRUE, nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_units"),
        sa.ForeignKeyConstraint(["parent_code"], ["units.code"], name="fk_units_parent_code_units"),
    )
    op.create_index("ix_units_parent_code", "units", ["parent_code"])
    op.create_index("ix_units_path", "units", ["path"])

    op.create_table(
        "people",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("webhook", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=TRUE, nullable=False),
        sa.Column("kind", sa.Text(), server_default=sa.text("'person'"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_people"),
    )

    op.create_table(
        "person_roles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("person_id", sa.Text(), nullable=False),
        sa.Column("unit_code", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=TRUE, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_person_roles"),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name="fk_person_roles_person_id_people"
        ),
        sa.ForeignKeyConstraint(
            ["unit_code"], ["units.code"], name="fk_person_roles_unit_code_units"
        ),
        sa.UniqueConstraint(
            "person_id", "unit_code", "role", name="uq_person_roles_person_id_unit_code_role"
        ),
    )
    op.create_index("ix_person_roles_unit_code_role", "person_roles", ["unit_code", "role"])

    op.create_table(
        "workflow_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=True),
        _ts("loaded_at"),
        sa.PrimaryKeyConstraint("id", name="pk_workflow_versions"),
        sa.UniqueConstraint("workflow", "version", name="uq_workflow_versions_workflow_version"),
        sa.UniqueConstraint(
            "workflow", "content_hash", name="uq_workflow_versions_workflow_content_hash"
        ),
    )

    op.create_table(
        "cases",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("workflow", sa.Text(), nullable=False),
        sa.Column("definition_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("unit_code", sa.Text(), nullable=False),
        sa.Column("data", _json(), nullable=False),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.Column("escalation_level", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _ts("opened_at"),
        _ts("state_entered_at"),
        _ts("closed_at", nullable=True),
        _ts("updated_at"),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        sa.ForeignKeyConstraint(
            ["definition_id"],
            ["workflow_versions.id"],
            name="fk_cases_definition_id_workflow_versions",
        ),
        sa.ForeignKeyConstraint(["unit_code"], ["units.code"], name="fk_cases_unit_code_units"),
    )
    op.create_index("ix_cases_workflow_state", "cases", ["workflow", "state"])
    op.create_index("ix_cases_unit_code", "cases", ["unit_code"])
    op.create_index("ix_cases_closed_at", "cases", ["closed_at"])

    op.create_table(
        "history",
        sa.Column("case_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        _ts("at"),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=False),
        sa.Column("from_state", sa.Text(), nullable=True),
        sa.Column("to_state", sa.Text(), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("definition_id", sa.Integer(), nullable=False),
        sa.Column("prev_hash", sa.Text(), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("case_id", "seq", name="pk_history"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_history_case_id_cases"),
    )

    op.create_table(
        "state_entries",
        sa.Column("case_id", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        _ts("first_entered_at"),
        sa.PrimaryKeyConstraint("case_id", "state", name="pk_state_entries"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_state_entries_case_id_cases"),
    )

    op.create_table(
        "idempotency",
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("response", _json(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("actor", "key", name="pk_idempotency"),
    )


def downgrade() -> None:
    for table in (
        "idempotency",
        "state_entries",
        "history",
        "cases",
        "workflow_versions",
        "person_roles",
        "people",
        "units",
    ):
        op.drop_table(table)
