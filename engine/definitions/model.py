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
    "Deadline",
    "FieldSpec",
    "RoleRef",
    "Rung",
    "StateSpec",
    "Supervision",
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


@dataclass(frozen=True)
class StateSpec:
    name: str
    title: str = ""
    description: str = ""
    final: bool = False
    deadline: Deadline | None = None


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
