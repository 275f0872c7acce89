"""Timers, overdue facts and the notification outbox; cases.deadline_at.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(_ts("deadline_at", nullable=True))

    op.create_table(
        "timers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("case_revision", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("rung", sa.Integer(), nullable=True),
        _ts("deadline_at"),
        _ts("due_at"),
        sa.Column("repeat_seconds", sa.Integer(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        _ts("created_at"),
        _ts("fired_at", nullable=True),
        sa.Column("fired_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_timers"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_timers_case_id_cases"),
    )
    op.create_index(
        "ix_timers_pending_due",
        "timers",
        ["due_at"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_timers_case_id_status", "timers", ["case_id", "status"])

    op.create_table(
        "overdue_facts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Text(), nullable=False),
        sa.Column("unit_code", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        _ts("deadline_at"),
        sa.Column("rung", sa.Integer(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=False),
        _ts("recorded_at"),
        sa.Column("timer_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_overdue_facts"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_overdue_facts_case_id_cases"),
        sa.UniqueConstraint("timer_id", name="uq_overdue_facts_timer_id"),
    )
    op.create_index("ix_overdue_facts_case_id", "overdue_facts", ["case_id"])

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("roles", _json(), nullable=False),
        sa.Column("context", _json(), nullable=False),
        sa.Column("dedupe_key", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_notifications_case_id_cases"),
        sa.UniqueConstraint("dedupe_key", name="uq_notifications_dedupe_key"),
    )
    op.create_index("ix_notifications_status", "notifications", ["status"])
    op.create_index("ix_notifications_case_id", "notifications", ["case_id"])


def downgrade() -> None:
    for table in ("notifications", "overdue_facts", "timers"):
        op.drop_table(table)
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("deadline_at")
