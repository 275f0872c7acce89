"""The frozen, format-neutral definition model.

Nothing here knows YAML exists: the loader builds these from positioned
nodes, the checks and the compiler read them.  Where each thing was written
is kept beside the model, in a map from key path (``transitions[3].to``) to
line and column, so later checks can still point at the line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.definitions.office_hours import Reminders
from engine.yamlkit.durations import Duration

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "FIELD_TYPES",
    "LEVELS",
    "SYSTEM_ROLE",
    "TEXT_TYPES",
    "Countersign",
    "Deadline",
    "FieldSpec",
    "Party",
    "RoleRef",
    "Rung",
    "StateSpec",
    "Supervision",
    "TransferRule",
    "TransitionSpec",
    "Workflow",
]

LEVELS = ("district", "town", "village", "group")
FIELD_TYPES = (
    "string",
    "text",
    "number",
    "integer",
    "boolean",
    "enum",
    "date",
    "datetime",
    "point",
    "geometry",
    "list",
)
SYSTEM_ROLE = "system"
TEXT_TYPES = ("string", "text")
DEFAULT_MAX_LENGTH = 2000
"""Characters a ``string``/``text`` value may hold when its field gives no ``max_length``."""


@dataclass(frozen=True)
class RoleRef:
    """``LEVEL.ROLE``: a role held on a unit of that level in the case's chain."""

    level: str
    role: str

    def __str__(self) -> str:
        return self.role if self.level == "" else f"{self.level}.{self.role}"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    title: str = ""
    description: str = ""
    required: bool = False
    default: Any = None
    values: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    items: str | None = None
    max_length: int | None = None  # None: DEFAULT_MAX_LENGTH for text (see text_limit)

    @property
    def text_limit(self) -> int:
        """At most this many characters in a text value (or each text item of a list)."""
        return self.max_length if self.max_length is not None else DEFAULT_MAX_LENGTH


@dataclass(frozen=True)
class Rung:
    after: Duration
    notify: tuple[RoleRef, ...] = ()
    template: str | None = None
    trigger: str | None = None


@dataclass(frozen=True)
class Deadline:
    within: Duration | None = None
    from_state: str | None = None
    until_field: str | None = None
    remind: tuple[Duration, ...] = ()
    remind_every: Duration | None = None
    escalate: tuple[Rung, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TransferRule:
    """``transfer:`` of a state (移送/转办): where a case may be sent from it and who
    sends and answers.  *to* holds unit levels (any unit of that level) and
    ``LEVEL.ROLE`` departments (that role on the LEVEL unit of the case's chain)."""

    levels: tuple[str, ...] = ()
    departments: tuple[RoleRef, ...] = ()
    roles: tuple[RoleRef, ...] = ()  # who may send; empty: the roles of the state's transitions
    accept_roles: tuple[str, ...] = ("leader",)  # role names at the receiving unit
    deadline: Deadline | None = None  # to accept or return


@dataclass(frozen=True)
class Party:
    """One party of a countersign (会签): a role on the case's chain that must act."""

    role: RoleRef
    title: str = ""
    deadline: Deadline | None = None  # None: the countersign's default deadline

    @property
    def label(self) -> str:
        return self.title or str(self.role)


@dataclass(frozen=True)
class Countersign:
    """``countersign:`` of a state: parties that each sign or refuse before the case
    leaves it; *need* of them must sign (None: all)."""

    parties: tuple[Party, ...]
    need: int | None = None
    deadline: Deadline | None = None  # the default of parties without their own
    then: str | None = None  # a system transition fired at the join
    refused: str | None = None  # a system transition fired when the need can't be met

    @property
    def required(self) -> int:
        """How many signatures join the countersign."""
        return self.need if self.need is not None else len(self.parties)

    def party(self, role: str) -> Party | None:
        return next((p for p in self.parties if str(p.role) == role), None)

    def deadline_of(self, role: str) -> Deadline | None:
        party = self.party(role)
        if party is None:
            return None
        return party.deadline or self.deadline


@dataclass(frozen=True)
class StateSpec:
    name: str
    title: str = ""
    description: str = ""
    final: bool = False
    deadline: Deadline | None = None
    countersign: Countersign | None = None
    ack: Deadline | None = None  # 签收: one of the state's actors acknowledges within this
    transfer: TransferRule | None = None


@dataclass(frozen=True)
class TransitionSpec:
    index: int
    trigger: str
    sources: tuple[str, ...]
    dest: str
    title: str = ""
    description: str = ""
    roles: tuple[RoleRef, ...] = ()
    requires: tuple[str, ...] = ()
    payload: tuple[FieldSpec, ...] = ()
    when: str | None = None
    notify: tuple[RoleRef, ...] = ()
    template: str | None = None
    urgent: bool = False  # its notification is sent before any other (第一时间)

    @property
    def label(self) -> str:
        return self.title or self.trigger


@dataclass(frozen=True)
class Supervision:
    """``supervision:`` (督办): who may issue a notice on a case, whom it tells, and the
    default deadline of an answer (a notice's own ``within`` overrides the block's)."""

    roles: tuple[RoleRef, ...]
    notify: tuple[RoleRef, ...] = ()  # empty: the leader of the case's own unit level
    deadline: Deadline | None = None


@dataclass(frozen=True)
class Workflow:
    id: str
    title: str
    initial: str
    states: tuple[StateSpec, ...]
    transitions: tuple[TransitionSpec, ...]
    fields: tuple[FieldSpec, ...] = ()
    roles: tuple[RoleRef, ...] = ()
    timezone: str | None = None
    reminders: Reminders | None = None  # None: the settings' default
    # who may assign/reassign a case (None: every LEVEL.leader on the case's chain)
    assigners: tuple[RoleRef, ...] | None = None
    supervision: Supervision | None = None  # None: no supervision notice on its cases
    description: str = ""
    content_hash: str = ""
    source_path: str = ""
    _index: dict[str, StateSpec] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({s.name: s for s in self.states})

    def state(self, name: str) -> StateSpec:
        return self._index[name]

    def has_state(self, name: str) -> bool:
        return name in self._index

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)

    def transitions_from(self, state: str) -> list[TransitionSpec]:
        """Declared transitions out of *state*.  For what a case may do there, ask its
        compiled machine (:meth:`CompiledWorkflow.options`): this is for checks and views."""
        return [t for t in self.transitions if state in t.sources]
