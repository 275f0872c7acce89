"""The template context of a notification, built at send time from the database.

Names available to templates (``CONTEXT_NAMES``): ``case``, ``event``,
``deadline``, ``patrol``, ``recipient``, ``link``, ``kind`` — see
docs/workflow-format.md.  A notification without a case (a patrol reminder or
missed-patrol notice) has ``case`` None and ``patrol`` set — see
docs/patrols-and-assessment.md.
Times are shown in the workflow's time zone, in a form a phone reader takes
in at a glance (``9月18日 12:00``).

:func:`context_shape` is what ``gengbao validate`` checks templates against, so
this module imports the storage only inside the builder's queries: the
validator never loads SQLAlchemy (``tests/test_cli_imports.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from engine.definitions import TransitionSpec, Workflow
from notifications.template_fit import ANY, NONE, Record, Shape

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from engine.cases.catalog import Catalog
    from notifications.channels.base import Recipient

__all__ = ["CaseContext", "context_shape", "human_span", "local_text"]


def local_text(moment: dt.datetime, tz: str) -> str:
    local = moment.astimezone(ZoneInfo(tz))
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def human_span(seconds: float) -> str:
    """``3天2小时``, ``2小时``, ``45分钟`` — rounded down to what matters."""
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{max(minutes, 0)}分钟"
    hours, days = minutes // 60, minutes // 1440
    if days:
        rest = hours - days * 24
        return f"{days}天{rest}小时" if rest else f"{days}天"
    return f"{hours}小时"


class CaseContext:
    """Builds the ``case``/``event``/``deadline`` parts once per notification."""

    def __init__(self, catalog: Catalog, timezone: str, base_url: str | None = None) -> None:
        self.catalog = catalog
        self.timezone = timezone
        self.base_url = base_url.rstrip("/") if base_url else None

    def build(self, conn: Connection, notification: Any, now: dt.datetime) -> dict[str, Any]:
        from engine.grid import registry as grid

        if notification.case_id is None:
            return self._patrol(conn, notification, now)
        case = conn.execute(_statements().case, {"id": notification.case_id}).one()
        wf = self.catalog.compiled(conn, case.definition_id).workflow
        tz = wf.timezone or self.timezone
        chain = grid.chain(conn, case.unit_code)
        # The case as it was when the cause committed: a message tells what happened then.
        snapshot = notification.context.get("snapshot") or {}
        # Every declared field is a name, None when unset: a template may print any of them.
        data: dict[str, Any] = {f.name: None for f in wf.fields}
        data.update(snapshot.get("data", case.data))
        state_name: str = snapshot.get("state", case.state)
        level: int = snapshot.get("escalation_level", case.escalation_level)
        state = wf.state(state_name) if wf.has_state(state_name) else None
        fields = [
            {"name": f.name, "title": f.title or f.name, "value": data.get(f.name)}
            for f in wf.fields
            if data.get(f.name) not in (None, "", [])
        ]
        context: dict[str, Any] = {
            "kind": notification.kind,
            "link": f"{self.base_url}/ui/cases/{case.id}" if self.base_url else "",  # the case page
            "case": {
                "id": case.id,
                "workflow": wf.id,
                "workflow_title": wf.title,
                "state": state_name,
                "state_title": state.title if state else state_name,
                "unit": {"code": chain[0].code, "name": chain[0].name, "level": chain[0].level},
                "unit_chain": " / ".join(u.name for u in reversed(chain)),
                "fields": fields,
                "data": data,
                "escalation_level": level,
            },
            "event": None,
            "deadline": None,
            "patrol": None,
        }
        stored: Mapping[str, Any] = notification.context
        if "event" in stored:
            event = dict(stored["event"])
            event["payload"] = {
                **{name: None for name in _payload_names(wf, [event.get("trigger")])},
                **(event.get("payload") or {}),
            }
            event["actor_name"] = _person_name(conn, event.get("actor", ""))
            context["event"] = event
        if "deadline" in stored:
            d = stored["deadline"]
            due = dt.datetime.fromisoformat(d["due"])
            late = (now - due).total_seconds()
            context["deadline"] = {
                "due": local_text(due, tz),
                "state": d["state"],
                "state_title": d["state_title"],
                "rung": d["rung"],
                "overdue": human_span(late) if late > 0 else "",
                "remaining": human_span(-late) if late < 0 else "",
            }
        return context

    def _patrol(self, conn: Connection, notification: Any, now: dt.datetime) -> dict[str, Any]:
        """A patrol obligation notice: ``patrol`` is the rule, period and unit; no case."""
        from engine.grid import registry as grid

        stored: Mapping[str, Any] = notification.context.get("patrol") or {}
        chain = grid.chain(conn, notification.unit_code)
        end = dt.datetime.fromisoformat(stored["period_end"])
        late = (now - end).total_seconds()
        link = f"{self.base_url}/patrols?unit={chain[0].code}" if self.base_url else ""
        patrol = {
            **stored,
            "unit": {"code": chain[0].code, "name": chain[0].name, "level": chain[0].level},
            "unit_chain": " / ".join(u.name for u in reversed(chain)),
            "due": local_text(end, self.timezone),
            "overdue": human_span(late) if late > 0 else "",
            "remaining": human_span(-late) if late < 0 else "",
        }
        return {
            "kind": notification.kind,
            "link": link,
            "case": None,
            "event": None,
            "deadline": None,
            "patrol": patrol,
        }

    @staticmethod
    def with_recipient(context: Mapping[str, Any], recipient: Recipient) -> dict[str, Any]:
        return {**context, "recipient": {"id": recipient.id, "name": recipient.name}}


def _payload_names(wf: Workflow, triggers: list[Any]) -> list[str]:
    """The names a payload of these triggers can carry: their payload fields, the case fields."""
    names = [p.name for t in wf.transitions if t.trigger in triggers for p in t.payload]
    return names + [f.name for f in wf.fields]


def _record(names: list[str], what: str) -> Record:
    return Record({n: ANY for n in names}, what)


def context_shape(
    wf: Workflow, kind: str, transitions: list[TransitionSpec] | None = None
) -> Record:
    """What :meth:`CaseContext.build` gives a *kind* notification of *wf*, as a shape.

    *transitions* are the ones whose notices use the template (kind
    ``transition``): their payload fields are what ``event.payload`` may hold.
    Kept beside the builder, and tested against it, so the two cannot drift.
    """
    fields = [f.name for f in wf.fields]
    data = _record(fields, f"a field of workflow {wf.id!r}")
    case = Record(
        {
            **{k: ANY for k in ("id", "workflow", "workflow_title", "state", "state_title")},
            "unit": _record(["code", "name", "level"], "a key of case.unit"),
            "unit_chain": ANY,
            "fields": ANY,
            "data": data,
            "escalation_level": ANY,
        },
        "a key of case",
    )
    event: Shape = NONE
    if kind == "transition":
        triggers = [t.trigger for t in transitions or []]
        payload_what = (
            f"a payload field of {', '.join(sorted(set(triggers)))} or a field of {wf.id!r}"
            if triggers
            else f"a field of workflow {wf.id!r}"
        )
        event = Record(
            {
                **{k: ANY for k in ("trigger", "title", "actor", "actor_name", "from", "to")},
                "seq": ANY,
                "payload": _record(_payload_names(wf, triggers), payload_what),
            },
            "a key of event",
        )
    deadline: Shape = NONE
    if kind in ("reminder", "escalation"):
        keys = ["due", "state", "state_title", "rung", "overdue", "remaining"]
        deadline = _record(keys, "a key of deadline")
    return Record(
        {
            "kind": ANY,
            "link": ANY,
            "case": case,
            "event": event,
            "deadline": deadline,
            "patrol": NONE,
            "recipient": _record(["id", "name"], "a key of recipient"),
        },
        "a name of the template context",
    )


def _person_name(conn: Connection, person_id: str) -> str:
    if person_id == "system":
        return "系统"
    name: str | None = conn.execute(
        _statements().person_name, {"id": person_id}
    ).scalar_one_or_none()
    return name or person_id


class _Statements:
    """The builder's two reads, built once (on first use: the validator imports this
    module and must not load SQLAlchemy)."""

    def __init__(self) -> None:
        from sqlalchemy import bindparam, select

        from engine.store.tables import cases, people

        self.case = select(cases).where(cases.c.id == bindparam("id"))
        self.person_name = select(people.c.name).where(people.c.id == bindparam("id"))


@cache
def _statements() -> _Statements:
    return _Statements()
