"""``Prepared`` binds its parameters in the compiled order, converting by column type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy import bindparam

from engine.store.prepared import Prepared
from engine.store.tables import UTCDateTime

meta = sa.MetaData()
things = sa.Table(
    "things",
    meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("at", UTCDateTime),
    sa.Column("doc", sa.JSON),
)


def test_no_one_and_many_parameters_each_bind_their_own_values() -> None:
    engine = sa.create_engine("sqlite://")
    meta.create_all(engine)
    ten = datetime(2026, 12, 4, 10, tzinfo=timezone(timedelta(hours=8)))
    insert = Prepared(sa.insert(things), ("id", "name", "at", "doc"))
    drop = Prepared(sa.delete(things).where(things.c.id == bindparam("which")), ("which",))
    shout = Prepared(sa.update(things).values(name=sa.func.upper(things.c.name)), ())
    with engine.begin() as conn:
        insert.executemany(
            conn,
            [
                {
                    "id": 1,
                    "name": "a",
                    "at": ten,
                    "doc": {"k": 1},
                },
                {"id": 2, "name": "gone", "at": datetime(2026, 12, 4, 2, tzinfo=UTC), "doc": [2]},
            ],
        )
        insert.execute(conn, {"id": 3, "name": "c", "at": None, "doc": None})
        drop.execute(conn, {"which": 2})
        shout.execute(conn, {})
        got = conn.execute(sa.select(things).order_by(things.c.id)).all()
    assert [(r.id, r.name, r.at, r.doc) for r in got] == [
        (1, "A", datetime(2026, 12, 4, 2, tzinfo=UTC), {"k": 1}),
        (3, "C", None, None),
    ]
