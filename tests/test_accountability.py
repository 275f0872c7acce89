"""The accountability register (约谈/问责台账), checked by hand on a small fixture.

Case A (新华村一组, walked to ``filed``) gets two supervision notices from above: one
answered in writing, one left to go overdue through the real sweep (a deadline
fact at level 0, the rung's at level 1).  Case B, on the same unit, has two facts
written as other duties' helpers write them: its state deadline (no person on the
fact: the assignee of that state visit is answerable) and a countersign party's at
level 2 (a person on the fact).  A transfer from the group to 八桥镇 came back; one
accepted and one returned before the period do not count.  Two notices were sent to
the village leader: one read, one not; one unread before the period does not count.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa

from engine.app import App
from engine.assessment.accountability import render
from engine.clock import FixedClock
from engine.errors import InvalidDateRange
from engine.store.tables import (
    case_assignments,
    case_transfers,
    deliveries,
    notification_reads,
    overdue_facts,
)
from notifications.outbox import enqueue
from tests.support.farmland import UNIT, local, open_case, step
from tests.support.paths import GENGBAO, ROOT

DAY0, DAY1 = dt.date(2026, 9, 18), dt.date(2026, 9, 30)
MEMBER = "p-bq-xh-1-member"
VILLAGE_LEADER = "p-bq-xh-leader"
PLANNING = "p-ddk-planning"
TOWN_OFFICE = "p-bq-office"


def build(app: App, clock: FixedClock) -> dict[str, Any]:
    a = open_case(app)
    for n in range(4):
        step(app, a, n)
    _, late = app.supervision.supervise(a, "p-bq-leader", "请限期处理")
    _, answered = app.supervision.supervise(a, "p-ddk-office1", "请说明进展", "1d")
    app.supervision.reply(a, VILLAGE_LEADER, "正在调查", answered.id)
    clock.set(late.deadline_at)
    app.timers.run_due()
    b = open_case(app)
    now = clock.now()
    with app.engine.begin() as conn:
        conn.execute(
            sa.insert(case_assignments).values(
                case_id=b, state="discovered", entered_seq=1, status="acked",
                assignee=MEMBER, offered_at=now, acked_at=now,
            )
        )  # fmt: skip
        fact = {"case_id": b, "unit_code": UNIT, "deadline_at": now, "recorded_at": now}
        state_fact = conn.execute(
            sa.insert(overdue_facts)
            .values(**fact, state="discovered", level=0, timer_id=900001)
            .returning(overdue_facts.c.id)
        ).scalar_one()
        party_fact = conn.execute(
            sa.insert(overdue_facts)
            .values(
                **fact, state="discovered", rung=1, level=2, timer_id=900002,
                duty="party", person_id=PLANNING,
            )
            .returning(overdue_facts.c.id)
        ).scalar_one()  # fmt: skip
        sent = {"state": "filed", "reason": "属镇级管辖", "sent_by": VILLAGE_LEADER}
        returned = conn.execute(
            sa.insert(case_transfers)
            .values(
                case_id=a, from_unit=UNIT, to_unit="ddk-bq", sent_at=now, status="returned",
                answered_by=TOWN_OFFICE, answered_at=now, answer_note="退回", **sent,
            )
            .returning(case_transfers.c.id)
        ).scalar_one()  # fmt: skip
        conn.execute(
            sa.insert(case_transfers),
            [
                {"case_id": a, "from_unit": UNIT, "to_unit": "ddk-bq", "sent_at": now,
                 "status": "accepted", "answered_by": TOWN_OFFICE, "answered_at": now, **sent},
                {"case_id": a, "from_unit": UNIT, "to_unit": "ddk-bq", "sent_at": now,
                 "status": "returned", "answered_by": TOWN_OFFICE,
                 "answered_at": local(2026, 9, 1, 9), **sent},
            ],
        )  # fmt: skip
        ids = []
        for n, (person, at) in enumerate(
            [(VILLAGE_LEADER, now), (VILLAGE_LEADER, now), ("p-bq-leader", local(2026, 9, 1))]
        ):
            nid = enqueue(
                conn, case_id=a, kind="transition", roles=["village.leader"],
                template="generic_transition", context={}, dedupe_key=f"t{n}", at=at,
            )  # fmt: skip
            ids.append(
                conn.execute(
                    sa.insert(deliveries)
                    .values(
                        notification_id=nid, person_id=person, channel="sms", address="1",
                        dedupe_key=f"d{n}", status="sent", next_attempt_at=at, sent_at=at,
                        created_at=at,
                    )
                    .returning(deliveries.c.id)
                ).scalar_one()
            )  # fmt: skip
        conn.execute(
            sa.insert(notification_reads).values(
                notification_id=conn.execute(
                    sa.select(deliveries.c.notification_id).where(deliveries.c.id == ids[0])
                ).scalar_one(),
                person_id=VILLAGE_LEADER,
                acked_at=now,
            )
        )
    with app.engine.connect() as conn:
        sup_facts = [
            r.id
            for r in conn.execute(
                sa.select(overdue_facts.c.id)
                .where(overdue_facts.c.duty == "supervision")
                .order_by(overdue_facts.c.id)
            )
        ]
    return {
        "a": a,
        "b": b,
        "late": late.id,
        "answered": answered.id,
        "sup_facts": sup_facts,
        "state_fact": state_fact,
        "party_fact": party_fact,
        "returned": returned,
        "unread": ids[1],
    }


def lines(app: App, **kw: Any) -> dict[tuple[str, str | None], dict[str, Any]]:
    register = app.assessment.accountability(DAY0, DAY1, **kw)
    return {(x.unit, x.person): x.as_dict() for x in register.lines}


def test_the_numbers_by_hand(app: App, clock: FixedClock) -> None:
    f = build(app, clock)
    a, b = f["a"], f["b"]
    got = lines(app)
    assert set(got) == {
        (UNIT, None),
        (UNIT, MEMBER),
        (UNIT, PLANNING),
        (UNIT, VILLAGE_LEADER),
        ("ddk-bq", None),
        ("ddk-bq", TOWN_OFFICE),
    }
    group = got[(UNIT, None)]
    assert group["overdue"] == {"state": 1, "party": 1, "transfer": 0, "ack": 0, "supervision": 2}
    assert (group["overdue_total"], group["top_level"]) == (4, 2)
    assert (group["supervisions"], group["unanswered"]) == (2, 1)
    assert (group["transfers_returned"], group["transfers_returned_sent"]) == (0, 1)
    assert group["unacknowledged"] == 1
    assert group["cases"] == sorted([a, b])
    s1, s2 = f["sup_facts"]
    assert group["refs"] == [
        f"fact:{s1}@{a}",
        f"fact:{s2}@{a}",
        f"fact:{f['state_fact']}@{b}",
        f"fact:{f['party_fact']}@{b}",
        f"supervision:{f['late']}@{a} (unanswered)",
        f"supervision:{f['answered']}@{a}",
        f"transfer:{f['returned']}@{a} (came back)",
        f"delivery:{f['unread']}@{a}",
    ]
    member = got[(UNIT, MEMBER)]  # the assignee of B's state visit
    assert (member["overdue"]["state"], member["overdue_total"], member["top_level"]) == (1, 1, 0)
    assert member["refs"] == [f"fact:{f['state_fact']}@{b}"]
    planning = got[(UNIT, PLANNING)]
    assert (planning["overdue"]["party"], planning["top_level"]) == (1, 2)
    leader = got[(UNIT, VILLAGE_LEADER)]
    assert (leader["unacknowledged"], leader["overdue_total"]) == (1, 0)
    town = got[("ddk-bq", None)]
    assert (town["transfers_returned"], town["overdue_total"], town["supervisions"]) == (1, 0, 0)
    assert got[("ddk-bq", TOWN_OFFICE)]["refs"] == [f"transfer:{f['returned']}@{a} (returned)"]
    # the day of the early transfer and delivery: they alone count
    early = app.assessment.accountability(dt.date(2026, 9, 1), dt.date(2026, 9, 1))
    assert {(x.unit, x.person) for x in early.lines} == {
        (UNIT, None),
        (UNIT, "p-bq-leader"),
        ("ddk-bq", None),
        ("ddk-bq", TOWN_OFFICE),
    }
    assert [(x.unacknowledged, x.overdue_total) for x in early.lines if x.unit == UNIT] == [
        (1, 0),
        (1, 0),
    ]


def test_the_level_filter_and_a_reversed_range(app: App, clock: FixedClock) -> None:
    build(app, clock)
    assert set(lines(app, level="town")) == {("ddk-bq", None), ("ddk-bq", TOWN_OFFICE)}
    assert lines(app, level="district") == {}
    with pytest.raises(InvalidDateRange):
        app.assessment.accountability(DAY1, DAY0)


def test_a_supervision_answered_by_moving_on_is_not_unanswered(app: App, clock: FixedClock) -> None:
    a = open_case(app)
    for n in range(4):
        step(app, a, n)
    app.supervision.supervise(a, "p-bq-leader", "请限期处理")
    assert lines(app)[(UNIT, None)]["unanswered"] == 1
    step(app, a, 4)  # the case moves on: nothing else is written
    group = lines(app)[(UNIT, None)]
    assert (group["supervisions"], group["unanswered"]) == (1, 0)


def test_every_format_renders(app: App, clock: FixedClock) -> None:
    f = build(app, clock)
    register = app.assessment.accountability(DAY0, DAY1)
    table = render(register, "table")
    assert isinstance(table, str) and "新华村一组" in table and "依据 Details:" in table
    assert f"supervision:{f['late']}@{f['a']} (unanswered)" in table
    body = json.loads(render(register, "json"))
    assert body["from"] == "2026-09-18" and len(body["lines"]) == 6
    text = render(register, "csv")
    assert isinstance(text, str)
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][-2:] == ["案件", "依据"] and len(rows) == 7
    [group] = [r for r in rows if r[0] == UNIT and r[3] == ""]
    assert f"delivery:{f['unread']}@{f['a']}" in group[-1].split()
    data = render(register, "xlsx")
    assert isinstance(data, bytes)
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet is not None and sheet.max_row == 7
    page = render(register, "html")
    assert isinstance(page, str) and page.startswith("<!DOCTYPE html>") and "依据" in page


def test_the_cli(app: App, clock: FixedClock, database: Any) -> None:
    build(app, clock)
    env = {**os.environ, "GENGBAO_DATABASE_URL": database.url}
    args = ["report", "accountability", "--from", "2026-09-18", "--to", "2026-09-30"]

    def run(*more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [GENGBAO, *args, *more], capture_output=True, text=True, env=env, cwd=ROOT, check=False
        )

    done = run("--json", "--level", "town")
    assert done.returncode == 0, done.stderr
    assert [x["unit"] for x in json.loads(done.stdout)["lines"]] == ["ddk-bq", "ddk-bq"]
    assert "新华村一组" in run().stdout
    bad = subprocess.run(
        [GENGBAO, "report", "accountability", "--from", "2026-09-30", "--to", "2026-09-01"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert bad.returncode == 2 and "--to" in bad.stderr and "Traceback" not in bad.stderr


def test_the_assessment_counts_supervisions_received_up_the_grid(
    app: App, clock: FixedClock
) -> None:
    from engine.assessment import AssessmentConfig

    build(app, clock)
    report = app.assessment.report(DAY0, DAY1, AssessmentConfig())
    got = {r["unit"]: r["supervisions"] for r in report.as_dicts()}
    assert (got[UNIT], got["ddk-bq-xh"], got["ddk-bq"], got["ddk"]) == (2, 2, 2, 2)
    assert got["ddk-js"] == 0 and got["ddk-bq-xh-2"] == 0
