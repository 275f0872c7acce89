"""The patrol rules file → frozen :class:`PatrolRule` objects, with every problem at once.

::

    timezone: Asia/Shanghai         # optional; default: the settings' timezone
    patrols:
      - level: village              # every unit of this level must be patrolled
        every: week                 # week (Monday–Sunday) | month | N days
        times: 1                    # at least this many patrols per period (default 1)
        roles: [village.member, village.leader]   # whose patrols count
        remind: [1d]                # before the period ends, if not yet done
        escalate:                   # after a period ends unfulfilled
          - after: 0m
            notify: [town.leader]
            template: patrol_missed # optional (default patrol_missed)

Problems are :class:`~engine.yamlkit.Diagnostic` objects
(``FILE:LINE:COL: error: patrols[0].every: ...``) gathered over the whole
file and raised together as :class:`PatrolRulesError`; unknown keys are
errors with a "did you mean" hint, like workflow files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import GridError, InvalidPeriod, PatrolRulesError
from engine.grid.registry import LEVELS, parse_role_ref
from engine.patrols.periods import Every, parse_every
from engine.yamlkit import (
    Diagnostic,
    Duration,
    Node,
    NodeReader,
    ScalarNode,
    SeqNode,
    parse_duration,
    parse_yaml,
)

__all__ = [
    "DEFAULT_MISSED_TEMPLATE",
    "REMINDER_TEMPLATE",
    "PatrolRule",
    "PatrolRulesError",
    "RulesFile",
    "Rung",
    "load_rules",
    "parse_rules",
]

REMINDER_TEMPLATE = "patrol_reminder"
DEFAULT_MISSED_TEMPLATE = "patrol_missed"

_TOP_KEYS = ("patrols", "timezone")
_RULE_KEYS = ("level", "every", "times", "roles", "remind", "escalate")
_RULE_REQUIRED = ("level", "every", "roles")
_RUNG_KEYS = ("after", "notify", "template")
_RUNG_REQUIRED = ("after", "notify")


@dataclass(frozen=True)
class Rung:
    after: Duration
    notify: tuple[str, ...]
    template: str = DEFAULT_MISSED_TEMPLATE

    def as_dict(self) -> dict[str, Any]:
        return {"after": self.after.text, "notify": list(self.notify), "template": self.template}


@dataclass(frozen=True)
class PatrolRule:
    """One obligation: every unit of ``level`` needs ``times`` patrols per period."""

    level: str
    every: Every
    times: int
    roles: tuple[str, ...]
    remind: tuple[Duration, ...]
    escalate: tuple[Rung, ...]
    timezone: str

    @property
    def id(self) -> str:
        return f"{self.level}-{self.every.text}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "level": self.level,
            "every": self.every.text,
            "times": self.times,
            "roles": list(self.roles),
            "remind": [d.text for d in self.remind],
            "escalate": [r.as_dict() for r in self.escalate],
            "timezone": self.timezone,
        }

    @property
    def content_hash(self) -> str:
        text = json.dumps(self.as_dict(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @classmethod
    def from_row(cls, row: Any) -> PatrolRule:
        """Rebuild a rule from its ``patrol_rules`` row (stored as plain JSON)."""
        return cls(
            level=row.level,
            every=parse_every(row.every),
            times=row.times,
            roles=tuple(row.roles),
            remind=tuple(parse_duration(d) for d in row.remind),
            escalate=tuple(
                Rung(parse_duration(r["after"]), tuple(r["notify"]), r["template"])
                for r in row.escalate
            ),
            timezone=row.timezone,
        )


@dataclass(frozen=True)
class RulesFile:
    rules: tuple[PatrolRule, ...]
    source: str


def load_rules(
    path: str | Path,
    default_timezone: str,
    template_problem: Callable[[str], str | None] | None = None,
) -> RulesFile:
    """Read and check a rules file; raises :class:`PatrolRulesError` with every problem."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PatrolRulesError(
            [Diagnostic(str(file), 1, 1, "error", "", f"cannot read the file: {exc}")]
        ) from exc
    return parse_rules(text, str(file), default_timezone, template_problem)


def parse_rules(
    text: str,
    filename: str,
    default_timezone: str,
    template_problem: Callable[[str], str | None] | None = None,
) -> RulesFile:
    root, diagnostics = parse_yaml(text, filename)
    reader = _Reader(filename, diagnostics, template_problem)
    rules = reader.file(root, default_timezone) if root is not None else ()
    if reader.diagnostics:
        raise PatrolRulesError(sorted(reader.diagnostics))
    return RulesFile(rules, filename)


class _Reader(NodeReader):
    def __init__(
        self,
        filename: str,
        diagnostics: list[Diagnostic],
        template_problem: Callable[[str], str | None] | None,
    ) -> None:
        super().__init__(filename, diagnostics)
        self.template_problem = template_problem

    def file(self, root: Node, default_timezone: str) -> tuple[PatrolRule, ...]:
        top = self.mapping(root, "", allowed=_TOP_KEYS, required=("patrols",))
        if top is None:
            return ()
        timezone = default_timezone
        tz_node = top.get("timezone")
        if tz_node is not None:
            timezone = self.timezone(tz_node, "timezone") or default_timezone
        rules: list[PatrolRule] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(self.items(top.get("patrols"), "patrols", what=" of rules")):
            path = f"patrols[{i}]"
            rule, key = self.rule(item, path, timezone)
            if key is not None and key in seen:
                level, every = key.split("-", 1)
                self.report(
                    item,
                    path,
                    f"a second rule for level {level!r} every {every!r} "
                    f"(the first is patrols[{seen[key]}]); merge them",
                )
                continue
            if key is not None:
                seen[key] = i
            if rule is not None:
                rules.append(rule)
        return tuple(rules)

    def rule(self, node: Node, path: str, timezone: str) -> tuple[PatrolRule | None, str | None]:
        """The rule (None when it has errors) and its id (when level and every are right)."""
        m = self.mapping(node, path, allowed=_RULE_KEYS, required=_RULE_REQUIRED)
        if m is None:
            return None, None
        before = len(self.diagnostics)
        level = self.choice(m.get("level"), f"{path}.level", LEVELS)
        every = self.every(m.get("every"), f"{path}.every")
        times = self.integer(m.get("times"), f"{path}.times", min=1) or 1
        roles = self.roles(m.get("roles"), f"{path}.roles")
        remind = self.durations(m.get("remind"), f"{path}.remind")
        escalate = self.rungs(m.get("escalate"), f"{path}.escalate")
        if every is not None:
            for d, item in zip(remind, _items(m.get("remind")), strict=False):
                if d.seconds >= every.shortest_seconds:
                    self.report(
                        item,
                        f"{path}.remind",
                        f"reminder {d.text!r} is not shorter than the period ({every.text})",
                    )
        key = f"{level}-{every.text}" if level is not None and every is not None else None
        if len(self.diagnostics) > before or level is None or every is None:
            return None, key
        return PatrolRule(level, every, times, roles, tuple(remind), escalate, timezone), key

    def every(self, node: Node | None, path: str) -> Every | None:
        if node is None:
            return None
        try:
            return parse_every(node.value if isinstance(node, ScalarNode) else node.plain())
        except InvalidPeriod as exc:
            self.report(node, path, str(exc))
            return None

    def roles(self, node: Node | None, path: str) -> tuple[str, ...]:
        return tuple(self.list_of(node, path, self.role, non_empty=True))

    def role(self, node: Node, path: str) -> str | None:
        """``LEVEL.ROLE`` as the grid names roles, e.g. ``village.member``."""
        value = self.text(node, path)
        if value is None:
            return None
        try:
            parse_role_ref(value)
        except GridError as exc:
            self.report(node, path, str(exc))
            return None
        return value

    def durations(self, node: Node | None, path: str) -> list[Duration]:
        return self.list_of(node, path, self.duration)

    def rungs(self, node: Node | None, path: str) -> tuple[Rung, ...]:
        out: list[Rung] = []
        for i, item in enumerate(self.items(node, path)):
            where = f"{path}[{i}]"
            m = self.mapping(item, where, allowed=_RUNG_KEYS, required=_RUNG_REQUIRED)
            if m is None:
                continue
            after = self.duration(m.get("after"), f"{where}.after")
            notify = self.roles(m.get("notify"), f"{where}.notify")
            template = self.template(m.get("template"), f"{where}.template")
            if after is not None and notify and template is not None:
                out.append(Rung(after, notify, template))
        return tuple(out)

    def template(self, node: Node | None, path: str) -> str | None:
        if node is None:
            name = DEFAULT_MISSED_TEMPLATE
        else:
            value = self.identifier(node, path, "template name")
            if value is None:
                return None
            name = value
        if self.template_problem is not None:
            problem = self.template_problem(name)
            if problem is not None:
                self.report(node or _nowhere(), path, problem)
                return None
        return name


def _items(node: Node | None) -> list[Node]:
    return node.items if isinstance(node, SeqNode) else []


def _nowhere() -> Node:
    return ScalarNode(1, 1, None)
