"""Seed the per-day id counters from the ids already there.

0011 created ``id_counters`` empty.  A database upgraded through it with cases
or patrols of a day already recorded then numbered that day's next record from
1 again, and the insert collided with an existing id whose suffix was a number
(``C20260918-0001``).  This sets each day's counter to the highest numeric
suffix already used (ids from before 0011 with random suffixes are left alone:
no sequence number can spell them), so the next id is always new.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQUENCED = re.compile(r"^([A-Z])(\d{8})-(\d+)$")
RECORDS = {"cases": "C", "patrols": "P"}


def upgrade() -> None:
    conn = op.get_bind()
    counters = sa.table(
        "id_counters", sa.column("prefix"), sa.column("day"), sa.column("last", sa.Integer)
    )
    highest: dict[tuple[str, str], int] = {}
    for table, prefix in RECORDS.items():
        ids = conn.execute(sa.select(sa.table(table, sa.column("id")).c.id)).scalars()
        for record_id in ids:
            m = SEQUENCED.match(record_id)
            if m is None or m.group(1) != prefix:
                continue
            key = (prefix, m.group(2))
            highest[key] = max(highest.get(key, 0), int(m.group(3)))
    for (prefix, day), last in highest.items():
        where = (counters.c.prefix == prefix) & (counters.c.day == day)
        current = conn.execute(sa.select(counters.c.last).where(where)).scalar_one_or_none()
        if current is None:
            conn.execute(sa.insert(counters).values(prefix=prefix, day=day, last=last))
        elif current < last:
            conn.execute(sa.update(counters).where(where).values(last=last))


def downgrade() -> None:
    """Nothing to undo: the counters stay valid at 0012."""
