"""Cross-reference and graph checks on a loaded definition.

Runs on the neutral model; positions come from the loader's path map, so
every problem still points at the line and column where it was written.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.definitions.expressions import ExpressionError, compile_guard
from engine.definitions.loader import Loaded
from engine.definitions.model import (
    LEVELS,
    SYSTEM_ROLE,
    Countersign,
    Deadline,
    StateSpec,
    TransferRule,
    TransitionSpec,
    Workflow,
)
from engine.yamlkit.diagnostics import Diagnostic, Severity, did_you_mean

__all__ = [
    "REMINDER_TEMPLATE",
    "RESERVED_TRIGGERS",
    "TemplateCheck",
    "TemplateFinding",
    "TemplateUse",
    "check",
]

REMINDER_TEMPLATE = "reminder"
# History triggers of what the engine records itself (case creation, deadline moves)
# and of the actions on a case that move no state (engine.duties): a workflow trigger
# of the same name would make the history ambiguous.
RESERVED_TRIGGERS: dict[str, str] = {
    "create": "case creation",
    "deadline_moved": "deadline recomputation",
    "sign": "countersign signature",
    "refuse": "countersign refusal",
    "countersign_done": "countersign join",
    "transfer": "transfer of a case",
    "transfer_accept": "acceptance of a transfer",
    "transfer_return": "return of a transfer",
    "ack": "acknowledgement (签收)",
    "assign": "assignment",
    "supervise": "supervision notice (督办)",
    "supervise_reply": "reply to a supervision",
    "migrated": "moving a case onto another workflow version",
}
"""The template the timer sweep names for every reminder (engine/timers/sweep.py)."""


@dataclass(frozen=True, kw_only=True)
class TemplateUse:
    """One way a workflow uses a template: a *kind* notification rendered with *name*.

    *name* None is the built-in default of the kind; *explicit* says the name
    was written in the workflow (a missing one is then an error, where a
    missing default falls back to the generic template).  *transitions* are
    the transitions whose notices use it (their payloads are in the context).
    """

    name: str | None
    kind: str  # transition | reminder | escalation
    workflow: Workflow
    transitions: tuple[TransitionSpec, ...] = ()
    explicit: bool = True


@dataclass(frozen=True, kw_only=True)
class TemplateFinding:
    """Why a use cannot render; *file* set means the problem is at a line of the template."""

    message: str
    file: str = ""
    line: int = 1
    column: int = 1


TemplateCheck = Callable[[TemplateUse], Sequence[TemplateFinding]]
"""Given one use of a template, every reason it would not render (none: it fits)."""


def check(loaded: Loaded, templates: TemplateCheck | None = None) -> list[Diagnostic]:
    """Add the semantic diagnostics of *loaded* to its own, sorted by position."""
    if loaded.workflow is not None:
        _Checker(loaded, templates).run(loaded.workflow)
    return sorted(set(loaded.diagnostics), key=lambda d: (d.line, d.column, d.message))


class _Checker:
    def __init__(self, loaded: Loaded, templates: TemplateCheck | None) -> None:
        self.loaded = loaded
        self.templates = templates
        self.uses: list[tuple[TemplateUse, str]] = []

    def report(self, path: str, message: str, severity: Severity = "error") -> None:
        line, column = self._position(path)
        self.loaded.diagnostics.append(
            Diagnostic(self.loaded.filename, line, column, severity, path, message)
        )

    def _position(self, path: str) -> tuple[int, int]:
        probe = path
        while probe:
            if probe in self.loaded.positions:
                return self.loaded.positions[probe]
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return self.loaded.positions.get("", (1, 1))

    def run(self, wf: Workflow) -> None:
        names = [s.name for s in wf.states]
        if wf.timezone is not None:
            try:
                ZoneInfo(wf.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                self.report("timezone", f"unknown time zone {wf.timezone!r}, e.g. 'Asia/Shanghai'")
        if wf.initial and not wf.has_state(wf.initial):
            self.report(
                "initial",
                f"initial state {wf.initial!r} is not a state{did_you_mean(wf.initial, names)}",
            )
        for state in wf.states:
            if state.deadline is not None:
                self.deadline(wf, state, state.deadline, f"states.{state.name}.deadline")
            if state.countersign is not None:
                self.countersign(wf, state, state.countersign, f"states.{state.name}.countersign")
            if state.transfer is not None:
                self.transfer(wf, state, state.transfer, f"states.{state.name}.transfer")
            if state.ack is not None:
                self.ack(wf, state, state.ack, f"states.{state.name}.ack")
        self.assigners(wf)
        for t in wf.transitions:
            self.transition(wf, t, names)
        if wf.supervision is not None:
            self.supervision(wf)
        self.duplicates(wf)
        self.graph(wf)
        self.template_uses()

    # -- states and deadlines -------------------------------------------
    def deadline(self, wf: Workflow, state: StateSpec, d: Deadline, path: str) -> None:
        if state.final:
            self.report(path, "a final state cannot have a deadline")
        if d.from_state is not None and not wf.has_state(d.from_state):
            known = [s.name for s in wf.states]
            self.report(
                f"{path}.from",
                f"'from' names no state: {d.from_state!r}{did_you_mean(d.from_state, known)}",
            )
        if d.until_field is not None:
            spec = wf.field(d.until_field)
            if spec is None:
                known = [f.name for f in wf.fields]
                self.report(
                    f"{path}.until",
                    f"'until' names no field: {d.until_field!r}"
                    f"{did_you_mean(d.until_field, known)}",
                )
            elif spec.type not in ("date", "datetime"):
                self.report(
                    f"{path}.until",
                    f"'until' needs a date or datetime field; {d.until_field!r} is {spec.type}",
                )
        if d.within is not None:
            for i, r in enumerate(d.remind):
                if r.seconds >= d.within.seconds:
                    self.report(
                        f"{path}.remind[{i}]",
                        f"reminder {r} before the deadline is not shorter than the deadline "
                        f"({d.within})",
                    )
            if d.remind_every is not None and d.remind_every.seconds >= d.within.seconds:
                self.report(
                    f"{path}.remind.every",
                    f"repeat {d.remind_every} is not shorter than the deadline ({d.within})",
                )
        if d.remind or d.remind_every is not None:
            use = TemplateUse(name=REMINDER_TEMPLATE, kind="reminder", workflow=wf, explicit=False)
            self.uses.append((use, f"{path}.remind"))
        previous = -1
        for i, rung in enumerate(d.escalate):
            rpath = f"{path}.escalate[{i}]"
            if rung.after.seconds < previous:
                self.report(f"{rpath}.after", "rungs should be in order of 'after'", "warning")
            previous = rung.after.seconds
            use = TemplateUse(name=rung.template, kind="escalation", workflow=wf)
            where = f"{rpath}.template" if rung.template is not None else f"{rpath}.notify"
            self.uses.append((use, where))
            if rung.trigger is not None:
                # the definition is still being checked: no machine exists yet to ask
                allowed = sorted({t.trigger for t in wf.transitions_from(state.name)})
                if rung.trigger not in allowed:
                    self.report(
                        f"{rpath}.trigger",
                        f"trigger {rung.trigger!r} cannot fire from state {state.name!r}"
                        f"{did_you_mean(rung.trigger, allowed)} "
                        f"(allowed: {', '.join(allowed) or 'none'})",
                    )

    # -- countersign (会签) ----------------------------------------------
    def countersign(self, wf: Workflow, state: StateSpec, c: Countersign, path: str) -> None:
        if state.final:
            self.report(path, "a final state cannot have a countersign: nothing waits there")
        seen: dict[str, int] = {}
        for i, party in enumerate(c.parties):
            ppath = f"{path}.parties[{i}]"
            role = str(party.role)
            if role == SYSTEM_ROLE:
                self.report(ppath, "a countersign party is a LEVEL.ROLE, not the system")
            if role in seen:
                self.report(
                    ppath, f"party {role!r} is listed twice (first at parties[{seen[role]}])"
                )
            seen.setdefault(role, i)
            if party.deadline is not None:
                self.duty_deadline(wf, state, party.deadline, f"{ppath}.deadline")
        if c.deadline is not None:
            self.duty_deadline(wf, state, c.deadline, f"{path}.deadline")
        if c.need is not None and c.parties and not 1 <= c.need <= len(c.parties):
            self.report(
                f"{path}.need",
                f"need {c.need} is not between 1 and the number of parties ({len(c.parties)})",
            )
        for key in ("then", "refused"):
            trigger = getattr(c, key)
            if trigger is None:
                continue
            leaving = [t for t in wf.transitions_from(state.name) if t.trigger == trigger]
            if not leaving:
                allowed = sorted({t.trigger for t in wf.transitions_from(state.name)})
                self.report(
                    f"{path}.{key}",
                    f"'{key}' names {trigger!r}, which is no transition from state "
                    f"{state.name!r}{did_you_mean(trigger, allowed)} "
                    f"(allowed: {', '.join(allowed) or 'none'})",
                )
            elif any([str(r) for r in t.roles] != [SYSTEM_ROLE] for t in leaving):
                self.report(
                    f"{path}.{key}",
                    f"'{key}' fires {trigger!r} as the system: give that transition "
                    "'roles: [system]'",
                )

    def duty_deadline(self, wf: Workflow, state: StateSpec, d: Deadline, path: str) -> None:
        """A duty's deadline: counted with 'within' from when the duty starts; its rungs
        notify, they fire no trigger."""
        if d.until_field is not None:
            self.report(f"{path}.until", "a party's deadline counts 'within'; 'until' is not used")
        elif d.within is None:
            self.report(path, "a party's deadline needs 'within' (a duration)")
        if d.from_state is not None:
            self.report(
                f"{path}.from", "a party's deadline counts from the state's entry: no 'from'"
            )
        for i, rung in enumerate(d.escalate):
            if rung.trigger is not None:
                self.report(
                    f"{path}.escalate[{i}].trigger",
                    "a party's escalation rung notifies; it fires no trigger (remove 'trigger')",
                )
        if d.within is not None:
            for i, r in enumerate(d.remind):
                if r.seconds >= d.within.seconds:
                    self.report(
                        f"{path}.remind[{i}]",
                        f"reminder {r} before the deadline is not shorter than the deadline "
                        f"({d.within})",
                    )
        for i, rung in enumerate(d.escalate):
            use = TemplateUse(name=rung.template, kind="escalation", workflow=wf)
            rpath = f"{path}.escalate[{i}]"
            where = f"{rpath}.template" if rung.template is not None else f"{rpath}.notify"
            self.uses.append((use, where))

    # -- acknowledgement (签收) and assigners -----------------------------
    def ack(self, wf: Workflow, state: StateSpec, d: Deadline, path: str) -> None:
        """A duty deadline: ``within`` (no ``from``/``until``), rungs without ``trigger``;
        the state must have someone to acknowledge it."""
        if state.final:
            self.report(path, "a final state cannot ask for an acknowledgement")
        if d.within is None:
            self.report(path, "an acknowledgement deadline needs 'within' (a duration)")
        if d.from_state is not None:
            self.report(f"{path}.from", "'from' is not for an acknowledgement: give 'within'")
        if d.until_field is not None:
            self.report(f"{path}.until", "'until' is not for an acknowledgement: give 'within'")
        for i, rung in enumerate(d.escalate):
            if rung.trigger is not None:
                self.report(
                    f"{path}.escalate[{i}].trigger",
                    "an acknowledgement rung cannot fire a trigger (it only notifies)",
                )
        actors = {
            str(r) for t in wf.transitions_from(state.name) for r in t.roles if str(r) != "system"
        }
        if not state.final and not actors:
            self.report(
                path,
                f"nobody can acknowledge state {state.name!r}: none of its transitions "
                "names a role other than system",
            )
        if d.within is not None:
            for i, r in enumerate(d.remind):
                if r.seconds >= d.within.seconds:
                    self.report(
                        f"{path}.remind[{i}]",
                        f"reminder {r} before the deadline is not shorter than the deadline "
                        f"({d.within})",
                    )

    def assigners(self, wf: Workflow) -> None:
        for i, ref in enumerate(wf.assigners or ()):
            if str(ref) == "system":
                self.report(f"assigners[{i}]", "the system role cannot assign a case")

    def transfer(self, wf: Workflow, state: StateSpec, rule: TransferRule, path: str) -> None:
        """A state's ``transfer:`` (移送): not on a final state; its deadline is a duty's
        (``within`` only, rungs without ``trigger``)."""
        if state.final:
            self.report(path, f"state {state.name!r} is final: a case there cannot be transferred")
        d = rule.deadline
        if d is None:
            return
        dpath = f"{path}.deadline"
        if d.until_field is not None:
            self.report(
                f"{dpath}.until", "a transfer's deadline is counted with 'within', not 'until'"
            )
        if d.from_state is not None:
            self.report(f"{dpath}.from", "a transfer's deadline starts when it is sent: no 'from'")
        if d.within is not None:
            for i, r in enumerate(d.remind):
                if r.seconds >= d.within.seconds:
                    self.report(
                        f"{dpath}.remind[{i}]",
                        f"reminder {r} before the deadline is not shorter than the deadline "
                        f"({d.within})",
                    )
        for i, rung in enumerate(d.escalate):
            if rung.trigger is not None:
                self.report(
                    f"{dpath}.escalate[{i}].trigger",
                    "a transfer's rung only notifies: it cannot fire a trigger",
                )

    def supervision(self, wf: Workflow) -> None:
        """``supervision:``: issuers named, roles of people (not ``system``); its deadline
        is a duty's (``within`` only, rungs that notify and fire no trigger)."""
        sup = wf.supervision
        assert sup is not None
        if not sup.roles and "supervision.roles" in self.loaded.positions:
            self.report("supervision.roles", "name at least one role that may supervise")
        for i, ref in enumerate(sup.roles):
            if ref.level == "":
                self.report(f"supervision.roles[{i}]", "the system does not supervise")
            elif ref.level == LEVELS[-1]:
                self.report(
                    f"supervision.roles[{i}]",
                    f"a {ref.level} role has no unit below it to supervise",
                )
        for i, ref in enumerate(sup.notify):
            if ref.level == "":
                self.report(f"supervision.notify[{i}]", "notify people's roles, not 'system'")
        d = sup.deadline
        if d is None:
            return
        path = "supervision.deadline"
        if d.within is None:
            self.report(f"{path}.within", "a supervision's deadline needs 'within' (a duration)")
        if d.from_state is not None:
            self.report(f"{path}.from", "a supervision counts from its issue: no 'from'")
        if d.until_field is not None:
            self.report(f"{path}.until", "a supervision's deadline is 'within', not 'until'")
        if d.within is not None:
            for i, r in enumerate(d.remind):
                if r.seconds >= d.within.seconds:
                    self.report(
                        f"{path}.remind[{i}]",
                        f"reminder {r} before the deadline is not shorter than the deadline "
                        f"({d.within})",
                    )
        for i, rung in enumerate(d.escalate):
            if rung.trigger is not None:
                self.report(
                    f"{path}.escalate[{i}].trigger",
                    "a supervision's rung notifies; it fires no trigger",
                )

    # -- transitions -----------------------------------------------------
    def transition(self, wf: Workflow, t: TransitionSpec, names: list[str]) -> None:
        path = f"transitions[{t.index}]"
        if t.trigger in RESERVED_TRIGGERS:
            self.report(
                f"{path}.trigger",
                f"trigger name {t.trigger!r} is reserved: the history names the engine's "
                f"{RESERVED_TRIGGERS[t.trigger]} with it; choose another name",
            )
        for i, source in enumerate(t.sources):
            spath = (
                f"{path}.from[{i}]"
                if f"{path}.from[{i}]" in self.loaded.positions
                else f"{path}.from"
            )
            if not wf.has_state(source):
                self.report(spath, f"unknown state {source!r}{did_you_mean(source, names)}")
            elif wf.state(source).final:
                self.report(spath, f"state {source!r} is final: no transition may leave it")
        if not wf.has_state(t.dest):
            self.report(f"{path}.to", f"unknown state {t.dest!r}{did_you_mean(t.dest, names)}")
        field_names = {f.name for f in wf.fields}
        payload_names = {f.name for f in t.payload}
        for p in t.payload:
            spec = wf.field(p.name)
            if spec is not None and spec.type != p.type:
                self.report(
                    f"{path}.payload.{p.name}",
                    f"payload field {p.name!r} is {p.type} but case field "
                    f"{p.name!r} is {spec.type}",
                )
        for i, name in enumerate(t.requires):
            if name not in payload_names and name not in field_names:
                known = sorted(payload_names | field_names)
                self.report(
                    f"{path}.requires[{i}]",
                    f"requires {name!r}, which is neither a payload field nor a case field"
                    f"{did_you_mean(name, known)}",
                )
        if t.when is not None:
            self.guard(t.when, f"{path}.when", field_names | payload_names)
        if t.template is not None or t.notify:
            use = TemplateUse(name=t.template, kind="transition", workflow=wf, transitions=(t,))
            where = f"{path}.template" if t.template is not None else f"{path}.notify"
            self.uses.append((use, where))

    def guard(self, text: str, path: str, known: set[str]) -> None:
        try:
            guard = compile_guard(text)
        except ExpressionError as exc:
            self.report(path, f"bad guard {text!r}: {exc} (at character {exc.offset + 1})")
            return
        for name in sorted(guard.names - known):
            self.report(
                path,
                f"guard names unknown field {name!r}{did_you_mean(name, known)} "
                "(a guard sees case fields and this transition's payload)",
            )

    def template_uses(self) -> None:
        """Every template the workflow can send, checked against its kind's context.

        A problem inside a template file (an escape the sandbox refuses) is
        reported once, at that file's line, naming the workflow lines that use it.
        """
        if self.templates is None:
            return
        in_files: dict[tuple[str, int, int, str], list[str]] = {}
        for use, path in self.uses:
            for finding in self.templates(use):
                if not finding.file:
                    self.report(path, finding.message)
                    continue
                line, column = self._position(path)
                key = (finding.file, finding.line, finding.column, finding.message)
                in_files.setdefault(key, []).append(
                    f"{self.loaded.filename}:{line}:{column} ({path})"
                )
        for (file, line, column, message), users in in_files.items():
            shown = ", ".join(dict.fromkeys(users[:3])) + (" …" if len(users) > 3 else "")
            self.loaded.diagnostics.append(
                Diagnostic(file, line, column, "error", "", f"{message}; used at {shown}")
            )

    def duplicates(self, wf: Workflow) -> None:
        seen: dict[tuple[str, str], int] = {}
        for t in wf.transitions:
            if t.when is not None:
                continue
            for source in t.sources:
                first = seen.setdefault((t.trigger, source), t.index)
                if first != t.index:
                    self.report(
                        f"transitions[{t.index}].trigger",
                        f"trigger {t.trigger!r} from {source!r} is also unguarded in "
                        f"transitions[{first}]: add 'when' to tell them apart",
                    )
        # An unguarded transition listed before a guarded one with the same
        # trigger and source makes the guarded one unreachable.
        for t in wf.transitions:
            for source in t.sources:
                earlier = seen.get((t.trigger, source))
                if t.when is not None and earlier is not None and earlier < t.index:
                    self.report(
                        f"transitions[{t.index}].when",
                        f"never taken: unguarded transitions[{earlier}] with trigger "
                        f"{t.trigger!r} from {source!r} comes first",
                        "warning",
                    )

    # -- the graph -------------------------------------------------------
    def graph(self, wf: Workflow) -> None:
        dangling = any(
            not wf.has_state(name) for t in wf.transitions for name in (*t.sources, t.dest)
        )
        if dangling or not wf.has_state(wf.initial):
            return  # the graph is incomplete: its reachability errors would only be noise
        edges: dict[str, set[str]] = {s.name: set() for s in wf.states}
        for t in wf.transitions:
            for source in t.sources:
                if source in edges and wf.has_state(t.dest):
                    edges[source].add(t.dest)
        reachable = _reach(wf.initial, edges)
        for state in wf.states:
            path = f"states.{state.name}"
            if state.name not in reachable:
                self.report(path, f"state {state.name!r} cannot be reached from {wf.initial!r}")
            if not state.final and not edges[state.name]:
                self.report(
                    path,
                    f"state {state.name!r} is not final and has no way out "
                    "(add a transition from it, or mark it 'final: true')",
                )
        finals = {s.name for s in wf.states if s.final}
        if not finals:
            self.report("states", "no state is final: mark the end state(s) with 'final: true'")
        elif not finals & reachable:
            self.report("states", f"no final state is reachable from {wf.initial!r}")
        else:
            stuck = [
                s.name
                for s in wf.states
                if s.name in reachable and not s.final and not finals & _reach(s.name, edges)
            ]
            for name in stuck:
                self.report(f"states.{name}", f"no final state can be reached from {name!r}")


def _reach(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen = {start}
    queue = deque([start])
    while queue:
        for nxt in edges.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen
