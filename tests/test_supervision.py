"""Supervision notices (督办): who may issue one, its deadline, how it is answered.

The case is walked to ``filed`` (a 60-day state deadline, no rung that fires a
trigger), so the only timers that fire in these stories are the notice's own.
The bundled workflow's block: roles district.leader, district.office,
town.leader; 3 working days, a reminder 1 day before, a rung to district.office.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from engine.app import App
from engine.clock import FixedClock
from engine.errors import (
    IdempotencyMismatch,
    InvalidData,
    NotPermitted,
    SupervisionRefused,
    UnknownSupervision,
)
from engine.store.tables import history, notifications, overdue_facts, supervisions, timers
from tests.support.farmland import CASE_DATA, WORKFLOW_FILE, open_case, step

TOWN_LEADER = "p-bq-leader"  # town.leader of 八桥镇: above the case's group
VILLAGE_LEADER = "p-bq-xh-leader"  # village.leader of 新华村: the default addressee
DISTRICT_OFFICE = "p-ddk-office1"


def filed_case(app: App) -> str:
    case_id = open_case(app)
    for n in range(4):
        step(app, case_id, n)
    assert app.cases.get_case(case_id).state == "filed"
    return case_id


def rows(app: App, table: sa.Table, case_id: str) -> list[Any]:
    with app.engine.connect() as conn:
        return list(conn.execute(sa.select(table).where(table.c.case_id == case_id)).all())


def supervision_notices(app: App, case_id: str) -> list[Any]:
    return [r for r in rows(app, notifications, case_id) if r.template.startswith("supervision")]


def written(app: App, case_id: str) -> tuple[int, int, int, int]:
    """What an action on the case leaves behind: notices, history, supervision timers, outbox."""
    return (
        len(rows(app, supervisions, case_id)),
        len(rows(app, history, case_id)),
        len([t for t in rows(app, timers, case_id) if t.kind.startswith("supervision.")]),
        len(supervision_notices(app, case_id)),
    )


def test_issue_writes_the_notice_its_timers_history_and_tells_the_leader(app: App) -> None:
    case_id = filed_case(app)
    revision = app.cases.get_case(case_id).revision
    view, notice = app.supervision.supervise(case_id, TOWN_LEADER, "  请三日内立案查处  ")
    assert view.revision == revision + 1 and view.state == "filed"
    assert (notice.status, notice.note, notice.issued_by) == (
        "open",
        "请三日内立案查处",
        TOWN_LEADER,
    )
    assert notice.label == "open" and notice.unit == "ddk-bq-xh-1"
    assert notice.deadline_at > app.clock.now() + timedelta(days=3)  # working days
    entry = app.cases.history(case_id)[-1]
    assert (entry.trigger, entry.actor, entry.from_state, entry.to_state) == (
        "supervise",
        TOWN_LEADER,
        "filed",
        "filed",
    )
    assert entry.payload["supervision"] == notice.id
    assert entry.payload["within"] == "3 working days"
    assert entry.payload["notify"] == ["village.leader"]
    kinds = sorted(t.kind for t in rows(app, timers, case_id) if t.subject_id == notice.id)
    assert kinds == ["supervision.deadline", "supervision.escalation", "supervision.reminder"]
    [told] = supervision_notices(app, case_id)
    assert (told.template, told.roles) == ("supervision_issued", ["village.leader"])
    assert told.context["event"]["payload"]["note"] == "请三日内立案查处"


def test_a_holder_on_the_cases_own_level_may_not_supervise_and_nothing_is_written(
    app: App,
) -> None:
    # a case of the town itself: its town.leader is not above it
    town_case = app.cases.create_case("farmland_violation", "ddk-bq", TOWN_LEADER, CASE_DATA).id
    before = written(app, town_case)
    with pytest.raises(NotPermitted) as refused:
        app.supervision.supervise(town_case, TOWN_LEADER, "督办")
    assert refused.value.details["roles"] == ["district.leader", "district.office"]
    assert written(app, town_case) == before
    # someone with no role on the chain at all
    case_id = filed_case(app)
    before = written(app, case_id)
    with pytest.raises(NotPermitted):
        app.supervision.supervise(case_id, "p-js-leader", "督办")
    # a village leader holds no supervising role in this workflow
    with pytest.raises(NotPermitted):
        app.supervision.supervise(case_id, VILLAGE_LEADER, "督办")
    assert written(app, case_id) == before


@pytest.mark.parametrize("within", ["2 weeks", "1.5h", "0m", ""])
def test_a_bad_within_is_refused_naming_it(app: App, within: str) -> None:
    case_id = filed_case(app)
    before = written(app, case_id)
    with pytest.raises(InvalidData) as refused:
        app.supervision.supervise(case_id, TOWN_LEADER, "督办", within)
    assert list(refused.value.problems) == ["within"]
    assert written(app, case_id) == before


@pytest.mark.parametrize("note", ["", "   ", "字" * 2001, "a\x00b", "\ud800"])
def test_a_missing_or_too_long_note_is_refused(app: App, note: str) -> None:
    case_id = filed_case(app)
    with pytest.raises(InvalidData) as refused:
        app.supervision.supervise(case_id, TOWN_LEADER, note)
    assert list(refused.value.problems) == ["note"]
    assert written(app, case_id)[0] == 0


def test_a_workflow_without_the_block_takes_no_supervision(app: App) -> None:
    text = WORKFLOW_FILE.read_text(encoding="utf-8")
    start, end = text.index("supervision:\n"), text.index("# ----", text.index("supervision:\n"))
    plain = text[:start] + text[end:]
    plain = plain.replace("workflow: farmland_violation", "workflow: farmland_plain", 1)
    app.catalog.register_text(plain, "farmland_plain.yaml")
    case_id = app.cases.create_case(
        "farmland_plain", "ddk-bq-xh-1", "p-bq-xh-1-member", CASE_DATA
    ).id
    before = written(app, case_id)
    with pytest.raises(SupervisionRefused, match="no 'supervision:' block"):
        app.supervision.supervise(case_id, TOWN_LEADER, "督办", "1d")
    assert written(app, case_id) == before


def test_a_closed_case_is_refused(app: App) -> None:
    case_id = open_case(app)
    for n in range(7):
        step(app, case_id, n)
    with pytest.raises(SupervisionRefused, match="closed"):
        app.supervision.supervise(case_id, TOWN_LEADER, "督办")


def test_moving_on_answers_it_no_overdue_fact(app: App, clock: FixedClock) -> None:
    case_id = filed_case(app)
    _, notice = app.supervision.supervise(case_id, TOWN_LEADER, "请尽快作出处理决定", "2h")
    clock.advance(timedelta(hours=1))
    step(app, case_id, 4)  # decide: filed → rectifying
    moved_at = clock.now()
    clock.advance(timedelta(hours=5))
    app.timers.run_due()
    assert [f for f in rows(app, overdue_facts, case_id) if f.duty == "supervision"] == []
    assert [n.template for n in supervision_notices(app, case_id)] == ["supervision_issued"]
    [read] = app.supervision.supervisions(case_id)
    assert (read.id, read.status, read.answer, read.label) == (
        notice.id,
        "answered",
        "moved",
        "answered: moved on",
    )
    assert read.answered_at == moved_at
    with pytest.raises(SupervisionRefused, match="moved on"):
        app.supervision.reply(case_id, VILLAGE_LEADER, "已处理", notice.id)


def test_a_written_reply_answers_it_cancels_its_timers_and_tells_the_issuer(
    app: App, clock: FixedClock
) -> None:
    case_id = filed_case(app)
    _, notice = app.supervision.supervise(case_id, DISTRICT_OFFICE, "请说明进展", "1d")
    clock.advance(timedelta(hours=3))
    view, answered = app.supervision.reply(case_id, VILLAGE_LEADER, "已立案，正在调查取证")
    assert view.state == "filed"
    assert (answered.id, answered.status, answered.answer, answered.answered_by) == (
        notice.id,
        "answered",
        "replied",
        VILLAGE_LEADER,
    )
    assert answered.reply == "已立案，正在调查取证" and answered.label == "answered: replied"
    entry = app.cases.history(case_id)[-1]
    assert (entry.trigger, entry.actor) == ("supervise_reply", VILLAGE_LEADER)
    assert entry.payload == {
        "supervision": notice.id,
        "reply": "已立案，正在调查取证",
        "issued_by": DISTRICT_OFFICE,
    }
    mine = [t for t in rows(app, timers, case_id) if t.subject_id == notice.id]
    assert mine and {t.status for t in mine} == {"cancelled"}
    replied = supervision_notices(app, case_id)[-1]
    assert (replied.template, replied.roles) == (
        "supervision_replied",
        [f"person:{DISTRICT_OFFICE}"],
    )
    clock.advance(timedelta(days=3))
    app.timers.run_due()
    assert [f for f in rows(app, overdue_facts, case_id) if f.duty == "supervision"] == []
    with pytest.raises(UnknownSupervision):
        app.supervision.reply(case_id, VILLAGE_LEADER, "再次回复")  # no open one left


def test_a_reply_comes_from_the_cases_unit_or_its_addressees(app: App) -> None:
    case_id = filed_case(app)
    app.supervision.supervise(case_id, TOWN_LEADER, "请说明进展", "1d")
    with pytest.raises(NotPermitted):
        app.supervision.reply(case_id, "p-ddk-office2", "代为回复")  # district, not addressed
    # the group's own member (the case's own unit) may answer
    _, answered = app.supervision.reply(case_id, "p-bq-xh-1-member", "组里已配合调查")
    assert answered.answered_by == "p-bq-xh-1-member"


def test_unanswered_it_reminds_goes_overdue_and_escalates(app: App, clock: FixedClock) -> None:
    case_id = filed_case(app)
    _, notice = app.supervision.supervise(case_id, TOWN_LEADER, "请限期处理")
    clock.set(notice.deadline_at - timedelta(days=1))
    fired = app.timers.run_due()
    assert [f.kind for f in fired] == ["supervision.reminder"]
    reminder = supervision_notices(app, case_id)[-1]
    assert (reminder.template, reminder.kind, reminder.roles) == (
        "supervision_reminder",
        "reminder",
        ["village.leader"],
    )
    clock.set(notice.deadline_at)
    fired = app.timers.run_due()
    assert sorted(f.kind for f in fired) == ["supervision.deadline", "supervision.escalation"]
    facts = sorted(
        (f.level, f.duty, f.state, f.unit_code)
        for f in rows(app, overdue_facts, case_id)
        if f.duty is not None
    )
    assert facts == [
        (0, "supervision", "filed", "ddk-bq-xh-1"),
        (1, "supervision", "filed", "ddk-bq-xh-1"),
    ]
    rung = supervision_notices(app, case_id)[-1]
    assert (rung.template, rung.kind, rung.roles) == (
        "supervision_overdue",
        "escalation",
        ["district.office"],
    )
    [read] = app.supervision.supervisions(case_id)
    assert read.label == "open"  # still unanswered: overdue, but it can be answered late


def test_a_retry_with_the_same_key_replays_the_first_answer(app: App) -> None:
    case_id = filed_case(app)
    _, first = app.supervision.supervise(case_id, TOWN_LEADER, "督办", "1d", key="sup-1")
    view, again = app.supervision.supervise(case_id, TOWN_LEADER, "督办", "1d", key="sup-1")
    assert again.id == first.id and view.revision == app.cases.get_case(case_id).revision
    assert written(app, case_id)[0] == 1
    assert [e.trigger for e in app.cases.history(case_id)].count("supervise") == 1
    with pytest.raises(IdempotencyMismatch):
        app.supervision.supervise(case_id, TOWN_LEADER, "另一条督办", "1d", key="sup-1")
    _, r1 = app.supervision.reply(case_id, VILLAGE_LEADER, "已办", key="rep-1")
    _, r2 = app.supervision.reply(case_id, VILLAGE_LEADER, "已办", key="rep-1")
    assert r1.id == r2.id == first.id
    assert [e.trigger for e in app.cases.history(case_id)].count("supervise_reply") == 1


def test_reading_is_scoped_to_the_viewer(app: App) -> None:
    from engine.errors import UnknownCase

    case_id = filed_case(app)
    app.supervision.supervise(case_id, TOWN_LEADER, "督办", "1d")
    assert [s.label for s in app.supervision.supervisions(case_id, viewer=VILLAGE_LEADER)] == [
        "open"
    ]
    with pytest.raises(UnknownCase):
        app.supervision.supervisions(case_id, viewer="p-js-bh-leader")
    with pytest.raises(UnknownCase):
        app.supervision.supervise(case_id, TOWN_LEADER, "督办", "1d", viewer="p-js-bh-leader")


# -------------------------------------------------------------- the YAML block

BLOCK = """supervision:
  roles: [district.leader, town.leader]
  deadline: {within: 3d, remind: [1d], escalate: [{after: 0m, notify: [district.office]}]}
"""


def with_block(block: str) -> str:
    text = WORKFLOW_FILE.read_text(encoding="utf-8")
    start = text.index("supervision:\n")
    end = text.index("# ----", start)
    return text[:start] + block + "\n" + text[end:]


def problems(block: str) -> list[tuple[int, str, str]]:
    from engine.definitions import validate_text

    result = validate_text(with_block(block), "wf.yaml")
    return [(d.line, d.path, d.message) for d in result.errors]


def test_the_block_loads_into_the_model() -> None:
    from engine.definitions import validate_text

    result = validate_text(with_block(BLOCK), "wf.yaml")
    assert result.errors == []
    assert result.workflow is not None and result.workflow.supervision is not None
    sup = result.workflow.supervision
    assert [str(r) for r in sup.roles] == ["district.leader", "town.leader"]
    assert sup.notify == () and sup.deadline is not None
    assert str(sup.deadline.within) == "3d" and len(sup.deadline.escalate) == 1


@pytest.mark.parametrize(
    ("block", "path", "says"),
    [
        ("supervision:\n  roles: [towm.leader]\n", "supervision.roles[0]", "unknown level 'towm'"),
        ("supervision:\n  roles: [system]\n", "supervision.roles[0]", "does not supervise"),
        ("supervision:\n  roles: [group.member]\n", "supervision.roles[0]", "no unit below"),
        ("supervision:\n  notify: [town.leader]\n", "supervision", "missing required key 'roles'"),
        ("supervision:\n  roles: [town.leader]\n  whom: [x]\n", "supervision.whom", "unknown key"),
        (
            "supervision:\n  roles: [town.leader]\n  deadline: {until: rectify_by}\n",
            "supervision.deadline.within",
            "needs 'within'",
        ),
        (
            "supervision:\n  roles: [town.leader]\n  deadline:\n    within: 1d\n"
            "    escalate: [{after: 0m, notify: [district.office], trigger: dismiss}]\n",
            "supervision.deadline.escalate[0].trigger",
            "fires no trigger",
        ),
        (
            "supervision:\n  roles: [town.leader]\n  deadline: {within: 1d, remind: [2d]}\n",
            "supervision.deadline.remind[0]",
            "not shorter than the deadline",
        ),
    ],
)
def test_a_bad_block_is_reported_at_its_position(block: str, path: str, says: str) -> None:
    found = problems(block)
    assert any(p == path and says in m for _, p, m in found), found
    line = WORKFLOW_FILE.read_text(encoding="utf-8").index("supervision:\n")
    first = WORKFLOW_FILE.read_text(encoding="utf-8")[:line].count("\n") + 1
    assert all(n >= first for n, p, _ in found if p.startswith("supervision")), found
