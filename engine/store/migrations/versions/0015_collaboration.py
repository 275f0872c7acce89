"""Working a case together: countersign parties, transfers, assignments, supervisions,
notification reads; timers of those duties (``timers.subject_id``) and overdue facts
that say which duty and person they were (``overdue_facts.duty``, ``person_id``).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("timers") as batch:
        batch.add_column(sa.Column("subject_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("overdue_facts") as batch:
        batch.add_column(sa.Column("duty", sa.Text(), nullable=True))
        batch.add_column(sa.Column("person_id", sa.Text(), nullable=True))
    op.create_table(
        "case_parties",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("entered_seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("acted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_case_parties_case_id_cases"),
        sa.PrimaryKeyConstraint("id", name="pk_case_parties"),
        sa.UniqueConstraint(
            "case_id", "entered_seq", "role", name="uq_case_parties_case_id_entered_seq_role"
        ),
    )
    op.create_index("ix_case_parties_status_role", "case_parties", ["status", "role"])
    op.create_table(
        "case_transfers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("from_unit", sa.Text(), nullable=False),
        sa.Column("to_unit", sa.Text(), nullable=False),
        sa.Column("to_role", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("sent_by", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("answered_by", sa.Text(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_case_transfers_case_id_cases"),
        sa.ForeignKeyConstraint(
            ["from_unit"], ["units.code"], name="fk_case_transfers_from_unit_units"
        ),
        sa.ForeignKeyConstraint(
            ["to_unit"], ["units.code"], name="fk_case_transfers_to_unit_units"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_case_transfers"),
    )
    op.create_index("ix_case_transfers_case_id_status", "case_transfers", ["case_id", "status"])
    op.create_index("ix_case_transfers_to_unit_status", "case_transfers", ["to_unit", "status"])
    op.create_table(
        "case_assignments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("entered_seq", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("assignee", sa.Text(), nullable=True),
        sa.Column("assigned_by", sa.Text(), nullable=True),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_case_assignments_case_id_cases"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_case_assignments"),
        sa.UniqueConstraint(
            "case_id", "entered_seq", name="uq_case_assignments_case_id_entered_seq"
        ),
    )
    op.create_index(
        "ix_case_assignments_assignee_status", "case_assignments", ["assignee", "status"]
    )
    op.create_table(
        "supervisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("unit_code", sa.Text(), nullable=False),
        sa.Column("issued_by", sa.Text(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("answered_by", sa.Text(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_supervisions_case_id_cases"),
        sa.ForeignKeyConstraint(
            ["unit_code"], ["units.code"], name="fk_supervisions_unit_code_units"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_supervisions"),
    )
    op.create_index("ix_supervisions_case_id_status", "supervisions", ["case_id", "status"])
    op.create_index("ix_supervisions_unit_code_status", "supervisions", ["unit_code", "status"])
    op.create_table(
        "notification_reads",
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Text(), nullable=False),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name="fk_notification_reads_notification_id_notifications",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name="fk_notification_reads_person_id_people"
        ),
        sa.PrimaryKeyConstraint("notification_id", "person_id", name="pk_notification_reads"),
    )


def downgrade() -> None:
    op.drop_table("notification_reads")
    op.drop_table("supervisions")
    op.drop_table("case_assignments")
    op.drop_table("case_transfers")
    op.drop_table("case_parties")
    with op.batch_alter_table("overdue_facts") as batch:
        batch.drop_column("person_id")
        batch.drop_column("duty")
    with op.batch_alter_table("timers") as batch:
        batch.drop_column("subject_id")
