"""One name for a case's revision: ``cases.row_version`` becomes ``cases.revision``.

The view, the HTTP bodies and the CLI already call it ``revision``; the column
now does too.  A rename in place keeps every value.  ``recreate="never"``:
SQLite (≥ 3.25) renames a column with ``ALTER TABLE … RENAME COLUMN``, and
the copy-and-move a recreated table would need fails with ``foreign_keys=ON``
as soon as history rows point at the cases.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases", recreate="never") as batch:
        batch.alter_column("row_version", new_column_name="revision")


def downgrade() -> None:
    with op.batch_alter_table("cases", recreate="never") as batch:
        batch.alter_column("revision", new_column_name="row_version")
