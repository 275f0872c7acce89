"""Notification templates: every bundled one renders in Chinese within limits; the
sandbox refuses escape attempts; the validator catches unknown names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jinja2.exceptions import TemplateRuntimeError

from engine.definitions import load_definition
from notifications.templates import SMS_LIMIT, TemplateError, TemplateStore

STORE = TemplateStore()
CASE_TEMPLATES = [n for n in STORE.names() if not n.startswith("patrol")]

CASE: dict[str, Any] = {
    "id": "C20260918-K3F9QX",
    "workflow": "farmland_violation",
    "workflow_title": "违法占用耕地案件处置",
    "state": "stop_failed",
    "state_title": "制止无效待报告",
    "unit": {"code": "ddk-bq-xh-1", "name": "新华村一组", "level": "group"},
    "unit_chain": "大渡口区 / 八桥镇 / 新华村 / 新华村一组",
    "fields": [{"name": "address", "title": "地址", "value": "新华村一组 12 号旁"}],
    "data": {
        "address": "新华村一组 12 号旁",
        "land_type": "永久基本农田",
        "area_m2": 4000,
        "source": "村级巡查",
        "rectify_by": "2026-10-30",
        "rectify_kind": "拆除",
        "case_no": "大规资立〔2026〕1号",
    },
    "escalation_level": 1,
}
EVENT = {
    "trigger": "stop_fail",
    "title": "制止无效",
    "actor": "p-bq-xh-1-member",
    "actor_name": "陈组长",
    "payload": {"stop_note": "当事人拒绝停工"},
    "from": "discovered",
    "to": "stop_failed",
    "seq": 2,
}
DEADLINE = {
    "due": "9月18日 12:00",
    "state": "discovered",
    "state_title": "待制止",
    "rung": 0,
    "overdue": "2小时",
    "remaining": "",
}


# A satellite spot (workflows/satellite_spot.yaml) for its spot_* templates: every field
# the workflow declares is in case.data (None when unset), as the dispatcher gives them.
SPOT_FIELDS = load_definition(Path(__file__).parent.parent / "workflows" / "satellite_spot.yaml")
SPOT_CASE: dict[str, Any] = {
    **CASE,
    "workflow": "satellite_spot",
    "workflow_title": "卫片图斑核查处置",
    "state": "review",
    "state_title": "区级审核",
    "data": {
        **dict.fromkeys((f.name for f in SPOT_FIELDS.fields), None),
        "spot_no": "500104-2026-09-0002",
        "land_type": "一般耕地",
        "area_m2": 1150,
        "batch": "2026-09",
        "verify_by": "2026-09-30",
        "verdict": "违法",
        "violation_kind": "挖湖造景",
        "decision": "责令恢复耕作条件",
        "rectify_by": "2026-10-30",
    },
}


def context(kind: str, name: str = "") -> dict[str, Any]:
    return {
        "kind": kind,
        "case": SPOT_CASE if name.startswith("spot_") else CASE,
        "event": EVENT if kind == "transition" else None,
        "deadline": None if kind == "transition" else DEADLINE,
        "recipient": {"id": "p-bq-leader", "name": "王镇长"},
        "link": "https://gengbao.example.org/ui/cases/C20260918-K3F9QX",
    }


def kinds_for(name: str) -> list[str]:
    if name in ("reminder", "generic_reminder"):
        return ["reminder"]
    if name in ("overdue", "supervise", "generic_escalation", "spot_overdue", "spot_supervise"):
        return ["escalation"]
    return ["transition"]


@pytest.mark.parametrize("name", CASE_TEMPLATES)
def test_bundled_template_renders_within_limits(name: str) -> None:
    for kind in kinds_for(name):
        out = STORE.get(name).render(context(kind, name))
        assert "\n" not in out["subject"] and out["subject"]
        assert len(out["short"]) <= SMS_LIMIT, out["short"]
        assert CASE["id"] in out["subject"] + out["body"] + out["short"]
        assert "None" not in out["body"]


@pytest.mark.parametrize(
    ("source", "refused_at_load"),
    [
        ("{{ case.__class__ }}", True),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", True),
        ("{{ case.data.items.__globals__ }}", True),
        ("{{ 'x' * 100000 }}", False),
        ("{{ 2 ** 999999 }}", True),
        ("{{ '{0.__class__}'.format(case) }}", True),
        ("{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}", True),
        ("{{ self }}", True),
        ("{{ case.data.update({'a': 1}) }}", True),
    ],
)
def test_escape_attempts_never_execute(tmp_path: Path, source: str, refused_at_load: bool) -> None:
    (tmp_path / "evil.yaml").write_text(
        f'subject: x\nbody: x\nshort: "{source.replace(chr(34), chr(39))}"\n', encoding="utf-8"
    )
    store = TemplateStore([tmp_path])
    if refused_at_load:
        # Refused when the template loads, at the line of the file where it is written.
        with pytest.raises(TemplateError) as caught:
            store.get("evil")
        assert (caught.value.file, caught.value.line) == (str(tmp_path / "evil.yaml"), 3)
        assert "sandbox refuses" in str(caught.value)
        return
    # SecurityError for unsafe calls and operators at render time: nothing runs.
    with pytest.raises(TemplateRuntimeError):
        store.get("evil").render(context("transition"))


def test_admin_overrides_win_and_unknown_names_are_caught(tmp_path: Path) -> None:
    (tmp_path / "overdue.yaml").write_text(
        'subject: "本地 {{ case.id }}"\nbody: x\nshort: x\n', encoding="utf-8"
    )
    (tmp_path / "typo.yaml").write_text(
        'subject: "{{ cse.id }}"\nbody: x\nshort: x\n', encoding="utf-8"
    )
    store = TemplateStore([tmp_path])
    assert store.get("overdue").render(context("escalation"))["subject"] == f"本地 {CASE['id']}"
    problem = store.problem("typo")
    assert problem is not None and "unknown name(s) cse" in problem
    assert "does not exist" in (store.problem("nope") or "")


@pytest.mark.parametrize(
    ("body", "refusal"),
    [
        ("{{ case.id | shout }}", "line 1: No filter named 'shout'"),
        ("x\n{% if case.id %}{{ case.id | shout }}{% endif %}", "line 2: No filter named 'shout'"),
        ("{% if case.id is loud %}x{% endif %}", "line 1: No test named 'loud'"),
        (
            "{% block a %}{% endblock %}{% block a %}{% endblock %}",
            "line 1: block 'a' defined twice",
        ),
    ],
)
def test_what_the_compiler_would_refuse_is_refused_at_load(
    tmp_path: Path, body: str, refusal: str
) -> None:
    """Parts compile on first render, so the load checks what compiling would refuse;
    an unknown filter inside ``{% if %}`` (which Jinja2 itself would only refuse when the
    branch runs, at send time) is refused too."""
    (tmp_path / "bad.yaml").write_text(
        f"subject: x\nbody: {body!r}\nshort: x\n".replace("'", '"'), encoding="utf-8"
    )
    problem = TemplateStore([tmp_path]).problem("bad")
    assert problem is not None and f"body, {refusal}" in problem, problem


def test_a_part_compiles_once_on_first_render() -> None:
    store = TemplateStore()
    template = store.get("overdue")
    first = template.render(context("escalation"))
    compiled = dict(template._compiled)
    assert set(compiled) == {"subject", "body", "short"}
    assert template.render(context("escalation")) == first
    assert all(template._compiled[p] is compiled[p] for p in compiled)


@pytest.mark.parametrize(
    "body",
    [
        "{{ case.id }} {{ nope.x }}",  # no name assigned: the quick way
        "{% for f in case.fields %}{{ f.title }}{% endfor %}{{ f }}{{ nope }}",  # scopes
        "{% set n = case.id %}{{ n }}{{ nope }}",
    ],
)
def test_a_name_the_context_lacks_is_refused_whether_or_not_names_are_assigned(
    tmp_path: Path, body: str
) -> None:
    (tmp_path / "stray.yaml").write_text(
        f"subject: x\nbody: {body!r}\nshort: x\n".replace("'", '"'), encoding="utf-8"
    )
    problem = TemplateStore([tmp_path]).problem("stray")
    stray = "f, nope" if "for f" in body else "nope"
    assert problem is not None and f"body uses unknown name(s) {stray};" in problem, problem
