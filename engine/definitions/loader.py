"""Positioned YAML nodes → the frozen definition model, with every shape error.

This stage checks the *shape* of each key (known keys, required keys, types,
identifiers, durations, role references) and records where every key path was
written.  Cross-references and graph properties are checked afterwards by
:mod:`engine.definitions.checks`, on the neutral model.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from engine.definitions.model import (
    FIELD_TYPES,
    LEVELS,
    SYSTEM_ROLE,
    TEXT_TYPES,
    Countersign,
    Deadline,
    FieldSpec,
    Party,
    RoleRef,
    Rung,
    StateSpec,
    Supervision,
    TransferRule,
    TransitionSpec,
    Workflow,
)
from engine.definitions.office_hours import Reminders, parse_office_hours
from engine.definitions.values import check_value
from engine.yamlkit import (
    IDENTIFIER,
    Diagnostic,
    Duration,
    MapNode,
    Node,
    NodeReader,
    ScalarNode,
    SeqNode,
    describe,
    did_you_mean,
    parse_yaml,
)

_MEANT_TRUE = frozenset({"yes", "y", "on"})

__all__ = ["KEYS", "Loaded", "content_hash", "load_text"]

ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

KEYS: dict[str, tuple[str, ...]] = {
    "workflow": (
        "workflow",
        "title",
        "description",
        "initial",
        "timezone",
        "reminders",
        "roles",
        "fields",
        "states",
        "transitions",
        "assigners",
        "supervision",
    ),
    "reminders": ("office_hours",),
    "supervision": ("roles", "notify", "deadline"),
    "field": (
        "type",
        "title",
        "description",
        "required",
        "default",
        "values",
        "min",
        "max",
        "items",
        "max_length",
    ),
    "state": ("title", "description", "final", "deadline", "ack", "countersign", "transfer"),
    "countersign": ("need", "parties", "deadline", "then", "refused"),
    "party": ("role", "title", "deadline"),
    "transfer": ("to", "roles", "accept_roles", "deadline"),
    "deadline": ("within", "from", "until", "remind", "escalate"),
    "remind_every": ("every",),
    "rung": ("after", "notify", "template", "trigger"),
    "transition": (
        "trigger",
        "from",
        "to",
        "title",
        "description",
        "roles",
        "requires",
        "payload",
        "when",
        "notify",
        "template",
        "urgent",
    ),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "workflow": ("workflow", "initial", "states", "transitions"),
    "field": ("type",),
    "rung": ("after", "notify"),
    "countersign": ("parties",),
    "party": ("role",),
    "transfer": ("to",),
    "supervision": ("roles",),
    "transition": ("trigger", "from", "to"),
}


@dataclass
class Loaded:
    """What the loader produced: the model (when the shape allowed one),
    all diagnostics so far, and where each key path was written."""

    workflow: Workflow | None
    diagnostics: list[Diagnostic]
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    filename: str = ""

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def content_hash(text: str) -> str:
    normalized = text.replace("\r\n", "\n").encode("utf-8")
    return hashlib.sha256(normalized).hexdigest()


def load_text(text: str, filename: str = "<workflow>") -> Loaded:
    root, diagnostics = parse_yaml(text, filename)
    reader = _Reader(filename, diagnostics)
    if root is None:
        return Loaded(None, diagnostics, reader.positions, filename)
    workflow = reader.workflow(root)
    if workflow is not None:
        workflow = _with_source(workflow, content_hash(text), filename)
    return Loaded(workflow, reader.diagnostics, reader.positions, filename)


def _with_source(wf: Workflow, digest: str, filename: str) -> Workflow:
    return Workflow(
        id=wf.id,
        title=wf.title,
        initial=wf.initial,
        states=wf.states,
        transitions=wf.transitions,
        fields=wf.fields,
        roles=wf.roles,
        timezone=wf.timezone,
        reminders=wf.reminders,
        assigners=wf.assigners,
        supervision=wf.supervision,
        description=wf.description,
        content_hash=digest,
        source_path=filename,
    )


class _Reader(NodeReader):
    def block(self, node: Node, path: str, kind: str) -> MapNode | None:
        """A mapping of the *kind* named in :data:`KEYS` (allowed and required keys)."""
        return self.mapping(
            node, path, allowed=KEYS[kind], required=REQUIRED.get(kind, ()), what=_describe(kind)
        )

    def final(self, node: Node | None, path: str) -> bool:
        """``final:``; a refused ``yes``/``on`` still counts as meant, so the checks
        that follow report no state-graph errors caused by this one mistake."""
        value = self.boolean(node, path)
        if value is not None:
            return value
        meant = node.value if isinstance(node, ScalarNode) else None
        return isinstance(meant, str) and meant.strip().lower() in _MEANT_TRUE

    def role_refs(self, node: Node | None, path: str) -> tuple[RoleRef, ...]:
        refs: list[RoleRef] = []
        for i, item in enumerate(self.items(node, path, allow_scalar=True)):
            ref = self.role_ref(item, f"{path}[{i}]")
            if ref is not None:
                refs.append(ref)
        return tuple(refs)

    def role_ref(self, node: Node, path: str) -> RoleRef | None:
        value = self.text(node, path)
        if value is None:
            return None
        if value == SYSTEM_ROLE:
            return RoleRef("", SYSTEM_ROLE)
        level, dot, role = value.partition(".")
        if not dot or not role:
            self.report(node, path, f"bad role {value!r}: write LEVEL.ROLE, e.g. 'town.leader'")
            return None
        if level not in LEVELS:
            self.report(
                node,
                path,
                f"unknown level {level!r}{did_you_mean(level, LEVELS)} "
                f"(levels: {', '.join(LEVELS)})",
            )
            return None
        if not ROLE_NAME.match(role):
            self.report(node, path, f"bad role name {role!r}: use lower-case letters, digits, '_'")
            return None
        return RoleRef(level, role)

    def names(self, node: Node | None, path: str, what: str) -> tuple[str, ...]:
        found: list[str] = []
        for i, item in enumerate(self.items(node, path, allow_scalar=True)):
            name = self.identifier(item, f"{path}[{i}]", what)
            if name is not None:
                found.append(name)
        return tuple(found)

    # -- the workflow ----------------------------------------------------
    def workflow(self, root: Node) -> Workflow | None:
        top = self.block(root, "", "workflow")
        if top is None:
            return None
        wid = self.identifier(top.get("workflow"), "workflow", "workflow id")
        initial = self.text(top.get("initial"), "initial")
        fields = self.fields(top.get("fields"), "fields")
        states = self.states(top.get("states"))
        transitions = self.transitions(top.get("transitions"))
        tz_node = top.get("timezone")
        return Workflow(
            id=wid or "",
            title=self.text(top.get("title"), "title", numbers=True) or wid or "",
            description=self.text(top.get("description"), "description", numbers=True) or "",
            initial=initial or "",
            timezone=self.text(tz_node, "timezone", numbers=True) if tz_node is not None else None,
            reminders=self.reminders(top.get("reminders")),
            supervision=self.supervision(top.get("supervision")),
            roles=self.role_refs(top.get("roles"), "roles"),
            assigners=self.assigners(top.get("assigners")),
            fields=fields,
            states=states,
            transitions=transitions,
        )

    def reminders(self, node: Node | None) -> Reminders | None:
        """``reminders: {office_hours: "08:30-18:00"}`` (absent: the settings' default)."""
        if node is None:
            return None
        top = self.block(node, "reminders", "reminders")
        if top is None:
            return None
        hours_node = top.get("office_hours")
        if hours_node is None:
            return Reminders()
        value = hours_node.value if isinstance(hours_node, ScalarNode) else None
        try:
            return Reminders(office_hours=parse_office_hours(value))
        except ValueError as exc:
            self.report(hours_node, "reminders.office_hours", str(exc))
            return None

    def supervision(self, node: Node | None) -> Supervision | None:
        """``supervision: {roles, notify, deadline}`` (督办; absent: none allowed)."""
        if node is None:
            return None
        body = self.block(node, "supervision", "supervision")
        if body is None:
            return None
        deadline_node = body.get("deadline")
        return Supervision(
            roles=self.role_refs(body.get("roles"), "supervision.roles"),
            notify=self.role_refs(body.get("notify"), "supervision.notify"),
            deadline=self.deadline(deadline_node, "supervision.deadline")
            if deadline_node is not None
            else None,
        )

    def fields(self, node: Node | None, path: str) -> tuple[FieldSpec, ...]:
        if node is None or (isinstance(node, ScalarNode) and node.value is None):
            return ()
        self.mark(path, node)
        if not isinstance(node, MapNode):
            self.report(node, path, f"expected a mapping of field names, got {describe(node)}")
            return ()
        specs: list[FieldSpec] = []
        for name, (key_node, value) in node.entries.items():
            fpath = f"{path}.{name}"
            self.mark(fpath, value)
            if not IDENTIFIER.match(name):
                self.report(
                    key_node,
                    fpath,
                    f"bad field name {name!r}: use lower-case letters, "
                    "digits and '_', starting with a letter",
                )
                continue
            spec = self.field_spec(name, value, fpath)
            self.mark(fpath, key_node)
            if spec is not None:
                specs.append(spec)
        return tuple(specs)

    def field_spec(self, name: str, node: Node, path: str) -> FieldSpec | None:
        body = self.block(node, path, "field")
        if body is None:
            return None
        ftype = self.text(body.get("type"), f"{path}.type")
        if ftype is not None and ftype not in FIELD_TYPES:
            type_node = body.get("type")
            assert type_node is not None
            self.report(
                type_node,
                f"{path}.type",
                f"unknown type {ftype!r}{did_you_mean(ftype, FIELD_TYPES)} "
                f"(types: {', '.join(FIELD_TYPES)})",
            )
            ftype = None
        values_node = body.get("values")
        values: tuple[Any, ...] = ()
        if values_node is not None:
            values = tuple(n.plain() for n in self.items(values_node, f"{path}.values"))
            if ftype is not None and ftype != "enum":
                self.report(values_node, f"{path}.values", "'values' is only for type enum")
            elif not values:
                self.report(values_node, f"{path}.values", "an enum needs at least one value")
            elif len(set(map(str, values))) != len(values):
                self.report(values_node, f"{path}.values", "enum values must be distinct")
        elif ftype == "enum":
            self.report(node, path, "an enum field needs 'values'")
        items_node = body.get("items")
        items = self.text(items_node, f"{path}.items")
        if items_node is not None and items is not None:
            if ftype != "list":
                self.report(items_node, f"{path}.items", "'items' is only for type list")
            elif items not in FIELD_TYPES or items in ("list", "enum"):
                self.report(
                    items_node,
                    f"{path}.items",
                    f"bad item type {items!r} (item types: "
                    f"{', '.join(t for t in FIELD_TYPES if t not in ('list', 'enum'))})",
                )
        lo = self.number(body.get("min"), f"{path}.min")
        hi = self.number(body.get("max"), f"{path}.max")
        for key in ("min", "max"):
            bound = body.get(key)
            if bound is not None and ftype is not None and ftype not in ("number", "integer"):
                self.report(bound, f"{path}.{key}", f"'{key}' is only for number and integer")
        if lo is not None and hi is not None and lo > hi:
            bound = body.get("min")
            assert bound is not None
            self.report(bound, f"{path}.min", f"min {lo:g} is greater than max {hi:g}")
        max_length = self.max_length(body.get("max_length"), f"{path}.max_length", ftype, items)
        default_node = body.get("default")
        spec = FieldSpec(
            name=name,
            type=ftype or "string",
            title=self.text(body.get("title"), f"{path}.title", numbers=True) or "",
            description=self.text(body.get("description"), f"{path}.description", numbers=True)
            or "",
            required=bool(self.boolean(body.get("required"), f"{path}.required")),
            default=default_node.plain() if default_node is not None else None,
            values=values,
            min=lo,
            max=hi,
            items=items,
            max_length=max_length,
        )
        if default_node is not None and ftype is not None:
            problem = check_value(spec, spec.default)
            if problem:
                self.report(default_node, f"{path}.default", f"bad default: {problem}")
        return spec

    def max_length(
        self, node: Node | None, path: str, ftype: str | None, items: str | None
    ) -> int | None:
        """``max_length``: a positive whole number, for text (or a list of text)."""
        if node is None:
            return None
        value = node.value if isinstance(node, ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.report(
                node, path, f"max_length must be a positive whole number, got {describe(node)}"
            )
            return None
        holds_text = ftype in TEXT_TYPES or (ftype == "list" and items in TEXT_TYPES)
        if ftype is not None and not holds_text:
            self.report(node, path, "'max_length' is only for string and text (or a list of them)")
        return value

    def states(self, node: Node | None) -> tuple[StateSpec, ...]:
        if node is None:
            return ()
        self.mark("states", node)
        if not isinstance(node, MapNode) or not node.entries:
            self.report(node, "states", "expected a mapping of state names to their settings")
            return ()
        result: list[StateSpec] = []
        for name, (key_node, value) in node.entries.items():
            path = f"states.{name}"
            self.mark(path, key_node)
            if not IDENTIFIER.match(name):
                self.report(
                    key_node,
                    path,
                    f"bad state name {name!r}: use lower-case letters, "
                    "digits and '_', starting with a letter",
                )
                continue
            if isinstance(value, ScalarNode) and value.value is None:
                result.append(StateSpec(name=name, title=name))
                continue
            body = self.block(value, path, "state")
            self.mark(path, key_node)
            if body is None:
                continue
            deadline_node = body.get("deadline")
            countersign_node = body.get("countersign")
            ack_node = body.get("ack")
            result.append(
                StateSpec(
                    name=name,
                    title=self.text(body.get("title"), f"{path}.title", numbers=True) or name,
                    description=self.text(
                        body.get("description"), f"{path}.description", numbers=True
                    )
                    or "",
                    final=self.final(body.get("final"), f"{path}.final"),
                    deadline=self.deadline(deadline_node, f"{path}.deadline")
                    if deadline_node is not None
                    else None,
                    countersign=self.countersign(countersign_node, f"{path}.countersign")
                    if countersign_node is not None
                    else None,
                    ack=self.deadline(ack_node, f"{path}.ack") if ack_node is not None else None,
                    transfer=self.transfer(body.get("transfer"), f"{path}.transfer"),
                )
            )
        return tuple(result)

    def countersign(self, node: Node, path: str) -> Countersign | None:
        """``countersign:`` (会签): ``need``, ``parties`` (a role, or role/title/deadline),
        a default ``deadline``, the system triggers ``then`` and ``refused``."""
        body = self.block(node, path, "countersign")
        if body is None:
            return None
        parties: list[Party] = []
        for i, item in enumerate(
            self.items(body.get("parties"), f"{path}.parties", non_empty=True)
        ):
            party = self.party(item, f"{path}.parties[{i}]")
            if party is not None:
                parties.append(party)
        default_node = body.get("deadline")
        return Countersign(
            parties=tuple(parties),
            need=self.need(body.get("need"), f"{path}.need"),
            deadline=self.deadline(default_node, f"{path}.deadline")
            if default_node is not None
            else None,
            then=self.identifier(body.get("then"), f"{path}.then", "trigger"),
            refused=self.identifier(body.get("refused"), f"{path}.refused", "trigger"),
        )

    def party(self, node: Node, path: str) -> Party | None:
        if isinstance(node, ScalarNode):  # the short form: a role
            role = self.role_ref(node, path)
            return Party(role=role) if role is not None else None
        body = self.block(node, path, "party")
        if body is None:
            return None
        role_node = body.get("role")
        role = self.role_ref(role_node, f"{path}.role") if role_node is not None else None
        if role is None:
            return None
        deadline_node = body.get("deadline")
        return Party(
            role=role,
            title=self.text(body.get("title"), f"{path}.title", numbers=True) or "",
            deadline=self.deadline(deadline_node, f"{path}.deadline")
            if deadline_node is not None
            else None,
        )

    def need(self, node: Node | None, path: str) -> int | None:
        """``need: all`` (None) or a whole number k (k of n; its range is a check)."""
        if node is None:
            return None
        value = node.value if isinstance(node, ScalarNode) else None
        if value == "all":
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        self.report(node, path, f"expected 'all' or a whole number, got {describe(node)}")
        return None

    def assigners(self, node: Node | None) -> tuple[RoleRef, ...] | None:
        """``assigners: [village.leader, town.leader]`` (absent: every LEVEL.leader)."""
        if node is None:
            return None
        self.mark("assigners", node)
        refs = self.role_refs(node, "assigners")
        if isinstance(node, SeqNode) and not node.items:
            self.report(node, "assigners", "name at least one LEVEL.ROLE, e.g. [town.leader]")
        return refs

    def deadline(self, node: Node, path: str) -> Deadline | None:
        body = self.block(node, path, "deadline")
        if body is None:
            return None
        within = self.duration(body.get("within"), f"{path}.within")
        until_node = body.get("until")
        if body.get("within") is None and until_node is None:
            self.report(node, path, "a deadline needs 'within' (a duration) or 'until' (a field)")
        if body.get("within") is not None and until_node is not None:
            self.report(until_node, f"{path}.until", "give either 'within' or 'until', not both")
        if body.get("from") is not None and until_node is not None:
            self.report(
                until_node,
                f"{path}.until",
                "'from' counts a duration; it has no meaning with 'until'",
            )
        remind: list[Duration] = []
        every: Duration | None = None
        remind_node = body.get("remind")
        if isinstance(remind_node, MapNode):
            every_body = self.block(remind_node, f"{path}.remind", "remind_every")
            if every_body is not None:
                every = self.duration(every_body.get("every"), f"{path}.remind.every")
                if every is None and every_body.get("every") is None:
                    self.report(remind_node, f"{path}.remind", "missing required key 'every'")
                elif every is not None and every.seconds == 0:
                    self.report(
                        remind_node, f"{path}.remind.every", "a repeat must be longer than 0m"
                    )
        else:
            for i, item in enumerate(self.items(remind_node, f"{path}.remind", allow_scalar=True)):
                d = self.duration(item, f"{path}.remind[{i}]")
                if d is not None:
                    remind.append(d)
        rungs: list[Rung] = []
        for i, item in enumerate(self.items(body.get("escalate"), f"{path}.escalate")):
            rung = self.rung(item, f"{path}.escalate[{i}]")
            if rung is not None:
                rungs.append(rung)
        return Deadline(
            within=within,
            from_state=self.identifier(body.get("from"), f"{path}.from", "state name"),
            until_field=self.identifier(until_node, f"{path}.until", "field name"),
            remind=tuple(remind),
            remind_every=every,
            escalate=tuple(rungs),
        )

    def transfer(self, node: Node | None, path: str) -> TransferRule | None:
        """``transfer:`` of a state: ``to`` levels or LEVEL.ROLE departments, ``roles``
        who send, ``accept_roles`` role names that answer, a duty ``deadline``."""
        if node is None:
            return None
        body = self.block(node, path, "transfer")
        if body is None:
            return None
        levels: list[str] = []
        departments: list[RoleRef] = []
        to_node = body.get("to")
        for i, item in enumerate(self.items(to_node, f"{path}.to", allow_scalar=True)):
            ipath = f"{path}.to[{i}]"
            self.mark(ipath, item)
            value = self.text(item, ipath)
            if value is None:
                continue
            if "." in value:
                ref = self.role_ref(item, ipath)
                if ref is not None:
                    departments.append(ref)
            elif value in LEVELS:
                levels.append(value)
            else:
                self.report(
                    item,
                    ipath,
                    f"unknown level {value!r}{did_you_mean(value, LEVELS)}: write a level "
                    f"({', '.join(LEVELS)}) or LEVEL.ROLE, e.g. 'district.dept_agri'",
                )
        if to_node is not None and not levels and not departments:
            self.report(to_node, f"{path}.to", "a transfer needs at least one level or LEVEL.ROLE")
        accept: list[str] = []
        accept_node = body.get("accept_roles")
        for i, item in enumerate(
            self.items(accept_node, f"{path}.accept_roles", allow_scalar=True)
        ):
            ipath = f"{path}.accept_roles[{i}]"
            value = self.text(item, ipath)
            if value is None:
                continue
            if not ROLE_NAME.match(value):
                self.report(
                    item,
                    ipath,
                    f"bad role name {value!r}: a role name at the receiving unit "
                    "(lower-case letters, digits, '_'), e.g. 'leader'",
                )
                continue
            accept.append(value)
        deadline_node = body.get("deadline")
        deadline = None
        if deadline_node is not None:
            deadline = self.deadline(deadline_node, f"{path}.deadline")
        return TransferRule(
            levels=tuple(dict.fromkeys(levels)),
            departments=tuple(dict.fromkeys(departments)),
            roles=self.role_refs(body.get("roles"), f"{path}.roles"),
            accept_roles=tuple(dict.fromkeys(accept)) if accept else ("leader",),
            deadline=deadline,
        )

    def rung(self, node: Node, path: str) -> Rung | None:
        body = self.block(node, path, "rung")
        if body is None:
            return None
        after = self.duration(body.get("after"), f"{path}.after")
        if after is None:
            return None
        return Rung(
            after=after,
            notify=self.role_refs(body.get("notify"), f"{path}.notify"),
            template=self.identifier(body.get("template"), f"{path}.template", "template name"),
            trigger=self.identifier(body.get("trigger"), f"{path}.trigger", "trigger"),
        )

    def transitions(self, node: Node | None) -> tuple[TransitionSpec, ...]:
        result: list[TransitionSpec] = []
        if node is None:
            return ()
        self.mark("transitions", node)
        if not isinstance(node, SeqNode):
            self.report(
                node, "transitions", f"expected a list of transitions, got {describe(node)}"
            )
            return ()
        for i, item in enumerate(node.items):
            spec = self.transition(i, item, f"transitions[{i}]")
            if spec is not None:
                result.append(spec)
        return tuple(result)

    def transition(self, index: int, node: Node, path: str) -> TransitionSpec | None:
        body = self.block(node, path, "transition")
        if body is None:
            return None
        trigger = self.identifier(body.get("trigger"), f"{path}.trigger", "trigger")
        sources = self.names(body.get("from"), f"{path}.from", "state name")
        dest = self.identifier(body.get("to"), f"{path}.to", "state name")
        when_node = body.get("when")
        when = self.text(when_node, f"{path}.when")
        if trigger is None or not sources or dest is None:
            return None
        return TransitionSpec(
            index=index,
            trigger=trigger,
            sources=sources,
            dest=dest,
            title=self.text(body.get("title"), f"{path}.title", numbers=True) or "",
            description=self.text(body.get("description"), f"{path}.description", numbers=True)
            or "",
            roles=self.role_refs(body.get("roles"), f"{path}.roles"),
            requires=self.names(body.get("requires"), f"{path}.requires", "field name"),
            payload=self.fields(body.get("payload"), f"{path}.payload"),
            when=when,
            notify=self.role_refs(body.get("notify"), f"{path}.notify"),
            template=self.identifier(body.get("template"), f"{path}.template", "template name"),
            urgent=bool(self.boolean(body.get("urgent"), f"{path}.urgent")),
        )


_DESCRIPTIONS = {
    "workflow": "the workflow",
    "field": "a field: type, title, ...",
    "state": "a state: title, final, deadline, ack, countersign, transfer",
    "countersign": "need, parties, deadline, then, refused",
    "party": "role, title, deadline",
    "transfer": "to, roles, accept_roles, deadline",
    "deadline": "within, remind, escalate",
    "remind_every": "every",
    "supervision": "roles, notify, deadline",
    "rung": "after, notify, template",
    "transition": "trigger, from, to, ...",
}


def _describe(kind: str) -> str:
    return _DESCRIPTIONS.get(kind, kind)
