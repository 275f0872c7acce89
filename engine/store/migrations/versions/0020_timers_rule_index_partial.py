"""``ix_timers_rule_id_status`` holds only patrol-period timers (``rule_id`` set).

A case's timers have no ``rule_id``; the full index still took an entry
``(NULL, status)`` for each of them, written on every insert and moved on every
cancel.  Every query on the column is ``rule_id = :rule``, which implies
``rule_id IS NOT NULL``, so SQLite and PostgreSQL both use the partial index.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HAS_RULE = sa.text("rule_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_timers_rule_id_status", table_name="timers")
    op.create_index(
        "ix_timers_rule_id_status",
        "timers",
        ["rule_id", "status"],
        sqlite_where=HAS_RULE,
        postgresql_where=HAS_RULE,
    )


def downgrade() -> None:
    op.drop_index("ix_timers_rule_id_status", table_name="timers")
    op.create_index("ix_timers_rule_id_status", "timers", ["rule_id", "status"])
