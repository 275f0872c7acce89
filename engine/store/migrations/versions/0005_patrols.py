"""Patrols: the ledger, obligations (rules, periods, missed facts), survey findings;
timers without a case (patrol timers), notifications addressed to a unit.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _pending_index() -> None:
    op.create_index(
        "ix_timers_pending_due",
        "timers",
        ["due_at"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )


def upgrade() -> None:
    # SQLite rebuilds the table in batch mode; the partial index is recreated
    # by hand so its WHERE clause survives the copy.
    op.drop_index("ix_timers_pending_due", table_name="timers")
    with op.batch_alter_table("timers") as batch:
        batch.alter_column("case_id", existing_type=sa.Text(), nullable=True)
        batch.add_column(sa.Column("rule_id", sa.Text(), nullable=True))
        batch.add_column(_ts("period_start", nullable=True))
    _pending_index()
    op.create_index("ix_timers_rule_id_status", "timers", ["rule_id", "status"])

    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("unit_code", sa.Text(), nullable=True))

    op.create_table(
        "patrols",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("unit_code", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        _ts("started_at"),
        _ts("ended_at", nullable=True),
        sa.Column("route", _json(), nullable=True),
        sa.Column("area_m2", sa.Float(), nullable=True),
        sa.Column("findings", sa.Text(), nullable=True),
        sa.Column("suspected", _json(), nullable=False),
        sa.Column("attachments", _json(), nullable=False),
        _ts("recorded_at"),
        sa.PrimaryKeyConstraint("id", name="pk_patrols"),
        sa.ForeignKeyConstraint(["unit_code"], ["units.code"], name="fk_patrols_unit_code_units"),
        sa.ForeignKeyConstraint(["actor"], ["people.id"], name="fk_patrols_actor_people"),
    )
    op.create_index("ix_patrols_unit_code_started_at", "patrols", ["unit_code", "started_at"])
    op.create_index("ix_patrols_started_at", "patrols", ["started_at"])

    op.create_table(
        "patrol_cases",
        sa.Column("patrol_id", sa.Text(), nullable=False),
        sa.Column("case_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("patrol_id", "case_id", name="pk_patrol_cases"),
        sa.ForeignKeyConstraint(
            ["patrol_id"], ["patrols.id"], name="fk_patrol_cases_patrol_id_patrols"
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_patrol_cases_case_id_cases"),
    )
    op.create_index("ix_patrol_cases_case_id", "patrol_cases", ["case_id"])

    op.create_table(
        "patrol_rules",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("every", sa.Text(), nullable=False),
        sa.Column("times", sa.Integer(), nullable=False),
        sa.Column("roles", _json(), nullable=False),
        sa.Column("remind", _json(), nullable=False),
        sa.Column("escalate", _json(), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        _ts("loaded_at"),
        sa.PrimaryKeyConstraint("id", name="pk_patrol_rules"),
    )

    op.create_table(
        "patrol_periods",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("unit_code", sa.Text(), nullable=False),
        _ts("period_start"),
        _ts("period_end"),
        sa.Column("required", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        _ts("closed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_patrol_periods"),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["patrol_rules.id"], name="fk_patrol_periods_rule_id_patrol_rules"
        ),
        sa.ForeignKeyConstraint(
            ["unit_code"], ["units.code"], name="fk_patrol_periods_unit_code_units"
        ),
        sa.UniqueConstraint(
            "rule_id",
            "unit_code",
            "period_start",
            name="uq_patrol_periods_rule_id_unit_code_period_start",
        ),
    )
    op.create_index("ix_patrol_periods_period_end", "patrol_periods", ["period_end"])
    op.create_index(
        "ix_patrol_periods_rule_id_period_start_status",
        "patrol_periods",
        ["rule_id", "period_start", "status"],
    )

    op.create_table(
        "patrol_missed",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("unit_code", sa.Text(), nullable=False),
        _ts("period_start"),
        _ts("period_end"),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("required", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _ts("recorded_at"),
        sa.Column("timer_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_patrol_missed"),
        sa.UniqueConstraint(
            "rule_id",
            "unit_code",
            "period_start",
            name="uq_patrol_missed_rule_id_unit_code_period_start",
        ),
    )
    op.create_index("ix_patrol_missed_period_end", "patrol_missed", ["period_end"])

    op.create_table(
        "survey_findings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("unit_code", sa.Text(), nullable=False),
        sa.Column("found_on", sa.Date(), nullable=False),
        _ts("found_until"),
        sa.Column("area_m2", sa.Float(), nullable=True),
        sa.Column("lng", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("m_per_deg_lng", sa.Float(), nullable=True),
        sa.Column("m_per_deg_lat", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("file", sa.Text(), nullable=True),
        sa.Column("line", sa.Integer(), nullable=True),
        _ts("imported_at"),
        sa.PrimaryKeyConstraint("id", name="pk_survey_findings"),
        sa.ForeignKeyConstraint(
            ["unit_code"], ["units.code"], name="fk_survey_findings_unit_code_units"
        ),
        sa.UniqueConstraint("ref", name="uq_survey_findings_ref"),
    )
    op.create_index("ix_survey_findings_found_on", "survey_findings", ["found_on"])
    op.create_index("ix_survey_findings_unit_code", "survey_findings", ["unit_code"])


def downgrade() -> None:
    for table in (
        "survey_findings",
        "patrol_missed",
        "patrol_periods",
        "patrol_rules",
        "patrol_cases",
        "patrols",
    ):
        op.drop_table(table)
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("unit_code")
    op.execute("DELETE FROM timers WHERE case_id IS NULL")
    op.drop_index("ix_timers_rule_id_status", table_name="timers")
    op.drop_index("ix_timers_pending_due", table_name="timers")
    with op.batch_alter_table("timers") as batch:
        batch.drop_column("period_start")
        batch.drop_column("rule_id")
        batch.alter_column("case_id", existing_type=sa.Text(), nullable=False)
    _pending_index()
