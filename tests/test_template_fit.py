"""Notifications fit the workflow that sends them (issue 10, item 3).

A workflow with none of the farmland fields (``tests/data/valid/spot_check.yaml``)
gets every reminder, escalation and transition notice through real SMTP on
loopback; ``validate`` refuses a template that names a field the workflow does
not have, a context name its kind of notification does not get, or an
attribute the sandbox refuses; a template that still fails at send time falls
back to the generic one of its kind, and the message is sent.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.app import App
from engine.clock import FixedClock
from engine.definitions import FieldSpec, StateSpec, Workflow, validate_file
from engine.errors import DefinitionError
from engine.grid.registry import load_grid
from engine.settings import Settings
from engine.store.tables import deliveries, notifications
from notifications.channels.base import DeliveryFailed, Recipient
from notifications.render import CaseContext, context_shape
from notifications.template_fit import NONE, Record, Shape, unknown_names
from notifications.templates import TemplateStore
from tests.support.databases import Database
from tests.support.farmland import GRID_FILE, REPORTER, UNIT
from tests.support.properties import examples
from tests.support.receivers import SmtpReceiver

DATA = Path(__file__).parent / "data"
SPOT = DATA / "valid" / "spot_check.yaml"
SH = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 9, 18, 10, 0, tzinfo=SH)
SPOT_DATA = {"spot_id": "TB-2026-0042", "area_m2": 320}


def spot_app(database: Database, clock: FixedClock, smtp: SmtpReceiver, config: Path) -> App:
    email = {"host": smtp.host, "port": smtp.port, "security": "none", "timeout": 5}
    settings = Settings(
        database_url=database.url,
        workflows_dir=Path("workflows"),
        notifications={"channels": {"email": {**email, "sender": "noreply@example.org"}}},  # type: ignore[arg-type]
        source=config / "gengbao.yaml",
    )
    return App(settings, clock)


def sent_and_dead(app: App) -> tuple[list[Any], list[Any]]:
    with app.engine.connect() as conn:
        rows = list(conn.execute(sa.select(deliveries).order_by(deliveries.c.id)))
    return [r for r in rows if r.status == "sent"], [r for r in rows if r.status != "sent"]


def test_a_workflow_without_farmland_fields_gets_every_message(
    database: Database, tmp_path: Path, smtp: SmtpReceiver
) -> None:
    clock = FixedClock(START)
    app = spot_app(database, clock, smtp, tmp_path)
    try:
        load_grid(app.engine, GRID_FILE)
        app.catalog.register_file(SPOT)
        case = app.cases.create_case("spot_check", UNIT, REPORTER, SPOT_DATA)
        clock.set(START + timedelta(hours=1, minutes=5))  # the reminder, before its deadline
        app.timers.run_due()
        clock.set(START + timedelta(hours=3, minutes=5))  # the deadline and both rungs
        app.timers.run_due()
        app.cases.submit_event(case.id, "check", REPORTER, {"finding": "已复耕"})
        app.dispatcher.run_once()
        sent, other = sent_and_dead(app)
        contexts_match_their_shapes(app, clock)
    finally:
        app.close()
    assert other == []
    subjects = [str(m.message["Subject"]) for m in smtp.messages]
    assert len(sent) == len(smtp.messages) >= 4, subjects
    assert any("催办" in s for s in subjects)  # the reminder
    assert any("超时" in s for s in subjects)  # the escalations
    assert any("已核查" in s for s in subjects)  # the transition
    bodies = [m.message.get_content() for m in smtp.messages]
    assert all(case.id in b for b in bodies)
    assert any("TB-2026-0042" in b for b in bodies)  # the generic transition lists the fields


def contexts_match_their_shapes(app: App, clock: FixedClock) -> None:
    """What the validator assumes a context holds is what the dispatcher builds."""
    recipient = Recipient("p-x", "某人")
    with app.engine.connect() as conn:
        rows = list(conn.execute(sa.select(notifications)))
        assert {r.kind for r in rows} == {"transition", "reminder", "escalation"}
        for row in rows:
            wf = app.catalog.compiled(conn, app.catalog.latest(conn, "spot_check")[0]).workflow
            built = app.dispatcher.context.build(conn, row, clock.now())
            built = CaseContext.with_recipient(built, recipient)
            trigger = (row.context.get("event") or {}).get("trigger")
            used_by = [t for t in wf.transitions if t.trigger == trigger]
            conforms(context_shape(wf, row.kind, used_by), built, row.kind)


def conforms(shape: Shape, value: Any, where: str) -> None:
    if shape is NONE:
        assert value is None, where
    elif isinstance(shape, Record):
        assert isinstance(value, dict), where
        assert set(value) == set(shape.keys), (where, set(value) ^ set(shape.keys))
        for key, item in value.items():
            conforms(shape.keys[key], item, f"{where}.{key}")


# -- validate: every template a workflow can send fits it ------------------------
def spot_with(tmp_path: Path, rung_template: str | None = None, transition: str = "") -> Path:
    """spot_check.yaml with a template on its first rung and/or its transition."""
    text = SPOT.read_text(encoding="utf-8")
    if rung_template:
        text = text.replace(
            "          notify: [town.office]\n",
            f"          notify: [town.office]\n          template: {rung_template}\n",
        )
    if transition:
        text = text.replace(
            "    notify: [village.leader]\n",
            f"    notify: [village.leader]\n    template: {transition}\n",
        )
    path = tmp_path / "spot_check.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def line_of(path: Path, fragment: str) -> int:
    """The first line containing *fragment*; a fragment with leading spaces must start it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if fragment.startswith(" "):
        return next(i for i, line in enumerate(lines, 1) if line.startswith(fragment))
    return next(i for i, line in enumerate(lines, 1) if fragment in line)


def test_a_farmland_template_on_a_spot_workflow_is_an_error_at_its_line(
    tmp_path: Path,
) -> None:
    path = spot_with(tmp_path, rung_template="overdue", transition="case_filed")
    result = validate_file(path, TemplateStore().check)
    assert not result.ok
    found: dict[tuple[int, int], str] = {}
    for d in result.errors:  # one error per unknown name, at the line that names the template
        found[(d.line, d.column)] = found.get((d.line, d.column), "") + str(d)
    rung = found[(line_of(path, "template: overdue"), 21)]
    assert "template 'overdue' (escalation" in rung
    assert "case.data.address is not a field of workflow 'spot_check'" in rung
    transition = found[(line_of(path, "template: case_filed"), 15)]
    assert "case.data.land_type is not a field" in transition
    assert all(str(d).startswith(f"{path}:") for d in result.errors)


def test_an_unknown_template_name_gets_a_did_you_mean(tmp_path: Path) -> None:
    path = spot_with(tmp_path, rung_template="generic_escalatoin")
    [error] = validate_file(path, TemplateStore().check).errors
    assert error.line == line_of(path, "generic_escalatoin")
    assert "does not exist; did you mean 'generic_escalation'?" in error.message


def test_guarded_names_and_dead_branches_are_accepted(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "shared.yaml").write_text(
        'subject: "{{ case.id }}{% if event %}{{ event.title }}{% endif %}"\n'
        "body: |\n"
        "  {% if case.data.address is defined %}{{ case.data.address }}{% endif %}\n"
        "  {{ case.data.land_type | default('—') }}\n"
        "  {% if case.data.party is defined and case.data.party %}{{ case.data.party }}"
        "{% endif %}\n"
        "  {% if case.data.x is undefined %}-{% else %}{{ case.data.x }}{% endif %}\n"
        "  {{ deadline.due if deadline else '' }}{{ case.data.spot_id }}{{ case.data.remark }}\n"
        "  {% for f in case.fields %}{{ f.title }}{% endfor %}{{ case.data.get('nope') }}\n"
        'short: "{{ case.unit.name }}{% if deadline and deadline.overdue %}超时{% endif %}"\n',
        encoding="utf-8",
    )
    path = spot_with(tmp_path, rung_template="shared", transition="shared")
    result = validate_file(path, TemplateStore([folder]).check)
    assert result.diagnostics == [], "\n".join(map(str, result.diagnostics))


def test_a_name_the_kind_never_has_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "mixed.yaml").write_text(
        'subject: "{{ event.title }} {{ deadline.due }}"\nbody: x\nshort: x\n', encoding="utf-8"
    )
    path = spot_with(tmp_path, rung_template="mixed", transition="mixed")
    errors = [str(d) for d in validate_file(path, TemplateStore([folder]).check).errors]
    assert len(errors) == 2, errors
    assert any("event is not set in escalation notifications" in e for e in errors)
    assert any("deadline is not set in transition notifications" in e for e in errors)


def test_the_default_reminder_template_is_checked_too(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    # An administrator's farmland-only override of the reminder every workflow uses.
    (folder / "reminder.yaml").write_text(
        'subject: "{{ case.id }} {{ case.data.address }}"\nbody: x\nshort: x\n', encoding="utf-8"
    )
    [error] = validate_file(SPOT, TemplateStore([folder]).check).errors
    assert (error.line, error.path) == (
        line_of(SPOT, "remind: [1h]"),
        "states.checking.deadline.remind",
    )
    assert "template 'reminder' (reminder" in error.message
    assert "case.data.address is not a field of workflow 'spot_check'" in error.message


def test_an_unknown_payload_name_in_a_transition_template(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "notice.yaml").write_text(
        'subject: "{{ event.payload.finding }}"\nbody: "{{ event.payload.findng }}"\nshort: x\n',
        encoding="utf-8",
    )
    path = spot_with(tmp_path, transition="notice")
    [error] = validate_file(path, TemplateStore([folder]).check).errors
    assert "event.payload.findng is not a payload field of check or a field of 'spot_check'" in (
        error.message
    )
    assert "did you mean 'finding'?" in error.message


@pytest.mark.parametrize(
    "source",
    ["{{ case.__class__ }}", "{{ self }}", "{{ case.data.mro }}", "{{ event.func_globals }}"],
)
def test_a_template_escape_is_refused_at_the_template_line(tmp_path: Path, source: str) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    evil = folder / "evil.yaml"
    evil.write_text(f"subject: x\nbody: |\n  正文\n  {source}\nshort: x\n", encoding="utf-8")
    path = spot_with(tmp_path, rung_template="evil", transition="evil")
    result = validate_file(path, TemplateStore([folder]).check)
    [error] = result.errors  # once, however many lines use the template
    assert (error.file, error.line) == (str(evil), 4)
    assert "sandbox refuses" in error.message
    assert f"used at {path}:{line_of(path, 'template: evil')}:21" in error.message
    assert f"{path}:{line_of(path, '    template: evil')}:15" in error.message


def test_workflow_load_refuses_what_validate_refuses(
    database: Database, tmp_path: Path, smtp: SmtpReceiver
) -> None:
    app = spot_app(database, FixedClock(START), smtp, tmp_path)
    try:
        with pytest.raises(DefinitionError) as caught:
            app.catalog.register_file(spot_with(tmp_path, rung_template="overdue"))
    finally:
        app.close()
    assert "case.data.address is not a field of workflow 'spot_check'" in str(caught.value)


# -- send time: a template that still fails falls back, and the message is sent ---
def test_a_template_broken_after_load_falls_back_and_is_sent(
    database: Database, tmp_path: Path, smtp: SmtpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    notice = folder / "spot_overdue.yaml"
    notice.write_text(
        'subject: "图斑{{ case.data.spot_id }}超时"\nbody: |\n  {{ case.id }}\nshort: x\n',
        encoding="utf-8",
    )
    clock = FixedClock(START)
    app = spot_app(database, clock, smtp, tmp_path)
    try:
        load_grid(app.engine, GRID_FILE)
        app.catalog.register_file(spot_with(tmp_path, rung_template="spot_overdue"))
        app.cases.create_case("spot_check", UNIT, REPORTER, SPOT_DATA)
    finally:
        app.close()
    # Edited after the workflow was loaded: now it names a field spot_check lacks.
    notice.write_text(
        'subject: "图斑{{ case.data.spot_id }}超时"\nbody: |\n  正文\n  {{ case.data.address }}\n'
        "short: x\n",
        encoding="utf-8",
    )
    app = spot_app(database, clock, smtp, tmp_path)  # a new process reads the edited file
    try:
        clock.set(START + timedelta(hours=2, minutes=5))  # the reminder, then rung 0
        app.timers.run_due()
        with caplog.at_level(logging.WARNING):
            app.dispatcher.run_once()
        sent, other = sent_and_dead(app)
    finally:
        app.close()
    assert other == [] and sent
    escalations = [m for m in smtp.messages if "超时" in str(m.message["Subject"])]
    assert escalations  # the generic escalation, not nothing
    assert all("图斑" not in str(m.message["Subject"]) for m in escalations)
    warnings = [r for r in caplog.records if "spot_overdue" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # once, however many sent
    [warning] = warnings
    assert warning.levelno == logging.WARNING and warning.exc_info is None  # no traceback
    assert f"{notice}:4 (body)" in warning.getMessage()
    assert "address" in warning.getMessage()
    assert not [r for r in caplog.records if r.exc_info]


def test_without_a_generic_fallback_the_failure_is_a_reason_not_a_traceback(
    tmp_path: Path,
) -> None:
    (tmp_path / "patrol_reminder.yaml").write_text(
        "subject: x\nbody: |\n  一\n  {{ patrol.nope.deeper }}\nshort: x\n", encoding="utf-8"
    )
    store = TemplateStore([tmp_path])
    context: dict[str, Any] = {
        "kind": "reminder",
        "case": None,
        "patrol": {},
        "event": None,
        "deadline": None,
    }
    with pytest.raises(DeliveryFailed) as caught:  # a patrol notice has no case: no generic
        store.render("patrol_reminder", "reminder", context)
    assert not caught.value.retryable
    assert f"{tmp_path / 'patrol_reminder.yaml'}:4 (body)" in caught.value.reason


def test_a_template_deleted_after_load_is_replaced_and_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = TemplateStore()
    context = {
        "kind": "escalation",
        "link": "",
        "case": {
            "id": "C1",
            "workflow_title": "卫片图斑核查",
            "unit": {"name": "新华村一组"},
            "unit_chain": "大渡口区 / 八桥镇",
            "state_title": "待核查",
        },
        "deadline": None,
        "recipient": {"id": "p", "name": "王"},
    }
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            out = store.render("gone", "escalation", context)
            assert "C1" in out["subject"]
    [record] = caplog.records
    assert record.getMessage() == (
        "template gone does not exist; sent with template generic_escalation instead"
    )


# -- the static check agrees with the renderer -----------------------------------
NAMES = st.sampled_from(["address", "spot_id", "area_m2", "party", "remark", "land_type"])


@settings(max_examples=examples(60))
@given(
    fields=st.lists(NAMES, unique=True, max_size=4),
    used=NAMES,
    guard=st.sampled_from(["", "default", "defined", "truthy"]),
    kind=st.sampled_from(["transition", "reminder", "escalation"]),
)
def test_a_reference_is_refused_exactly_when_it_would_fail_to_render(
    fields: list[str], used: str, guard: str, kind: str
) -> None:
    expression = {
        "": f"{{{{ case.data.{used} }}}}",
        "default": f"{{{{ case.data.{used} | default('—') }}}}",
        "defined": f"{{% if case.data.{used} is defined %}}{{{{ case.data.{used} }}}}{{% endif %}}",
        "truthy": f"{{% if event %}}{{{{ event.title }}}}{{% endif %}}{{{{ case.data.{used} }}}}",
    }[guard]
    wf = Workflow(
        id="w",
        title="w",
        initial="a",
        states=(StateSpec(name="a", final=True),),
        transitions=(),
        fields=tuple(FieldSpec(name=n, type="string") for n in fields),
    )
    store_env = TemplateStore().env
    ast = store_env.parse(expression)
    refused = bool(unknown_names(ast, context_shape(wf, kind), kind))
    # The context the dispatcher builds: every declared field, None when unset.
    context = {
        "case": {"data": {n: None for n in fields}},
        "event": {"title": "操作"} if kind == "transition" else None,
    }
    try:
        store_env.from_string(expression).render(**context)
        rendered = True
    except jinja2.UndefinedError:
        rendered = False
    assert refused == (not rendered)
