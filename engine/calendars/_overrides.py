"""``config/calendars/*.yaml`` → :class:`Overrides` (format: ``config/calendars/README.md``).

Each file is a mapping with ``days`` (a list of entries, each a ``date`` or a
``from``/``to`` range, with ``working: true|false`` and an optional
``name``), an optional ``years`` (years the files declare complete) and an
optional ``source`` (where the arrangement was announced).  Every problem in
every file is gathered and raised at once as one :class:`ConfigError`, each
line ``FILE:LINE:COL: error: PATH: MESSAGE``.  A date may be set only once
across all the files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

from engine.errors import ConfigError
from engine.yamlkit.diagnostics import Diagnostic, did_you_mean
from engine.yamlkit.nodes import MapNode, Node, ScalarNode, SeqNode, parse_yaml

__all__ = ["DayOverride", "Overrides", "load_overrides"]

_TOP_KEYS = ("days", "years", "source")
_DAY_KEYS = ("date", "from", "to", "working", "name")
_MAX_RANGE_DAYS = 366
_MIN_YEAR, _MAX_YEAR = 1900, 9998


@dataclass(frozen=True)
class DayOverride:
    """One date set by an override file, and where."""

    day: date
    working: bool
    name: str
    file: str
    line: int


@dataclass(frozen=True)
class Overrides:
    """Everything the override files say, merged."""

    days: Mapping[date, DayOverride] = field(default_factory=lambda: MappingProxyType({}))
    complete_years: frozenset[int] = frozenset()
    files: tuple[str, ...] = ()


def load_overrides(directory: Path) -> Overrides:
    """Read every ``*.yaml`` in *directory* (sorted by name); raise ConfigError on any problem."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: calendar overrides folder not found", file=str(directory))
    reader = _Reader()
    files = sorted(directory.glob("*.yaml"))
    for file in files:
        reader.read_file(file)
    if reader.problems:
        ordered = sorted(reader.problems)
        raise ConfigError(
            "\n".join(str(d) for d in ordered),
            file=str(ordered[0].file),
            diagnostics=[d.as_dict() for d in ordered],
        )
    return Overrides(
        days=MappingProxyType(dict(reader.days)),
        complete_years=frozenset(reader.years),
        files=tuple(str(f) for f in files),
    )


class _Reader:
    def __init__(self) -> None:
        self.days: dict[date, DayOverride] = {}
        self.years: set[int] = set()
        self.problems: list[Diagnostic] = []
        self.filename = ""

    def report(self, node: Node, path: str, message: str) -> None:
        self.problems.append(
            Diagnostic(self.filename, node.line, node.column, "error", path, message)
        )

    def read_file(self, file: Path) -> None:
        self.filename = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.problems.append(
                Diagnostic(self.filename, 1, 1, "error", "", f"cannot read the file: {exc}")
            )
            return
        if not any(
            line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()
        ):
            return  # only comments: no overrides
        root, diagnostics = parse_yaml(text, self.filename)
        self.problems.extend(diagnostics)
        if root is None or diagnostics:
            return
        if not isinstance(root, MapNode):
            self.report(root, "", "expected a mapping with 'days' (and optionally 'years')")
            return
        for key, (key_node, _) in root.entries.items():
            if key not in _TOP_KEYS:
                self.report(key_node, key, _unknown(key, _TOP_KEYS))
        source = root.get("source")
        if source is not None and not _is_text(source):
            self.report(source, "source", "expected text, e.g. '国办发明电〔2026〕7号'")
        years = root.get("years")
        if years is not None:
            self.read_years(years)
        days = root.get("days")
        if days is None:
            if years is None:
                self.report(root, "", "nothing here: add 'days' (a list) or 'years'")
            return
        if isinstance(days, ScalarNode) and days.value is None:
            return  # "days:" with nothing under it
        if not isinstance(days, SeqNode):
            self.report(
                days, "days", "expected a list of entries like {date: 2027-01-01, working: false}"
            )
            return
        for index, item in enumerate(days.items):
            self.read_day(item, f"days[{index}]")

    def read_years(self, node: Node) -> None:
        if not isinstance(node, SeqNode):
            self.report(node, "years", "expected a list of years, e.g. [2027]")
            return
        for index, item in enumerate(node.items):
            value = item.value if isinstance(item, ScalarNode) else None
            if isinstance(value, bool) or not isinstance(value, int):
                self.report(item, f"years[{index}]", f"expected a year like 2027, got {value!r}")
            elif not _MIN_YEAR <= value <= _MAX_YEAR:
                self.report(item, f"years[{index}]", f"year {value} is out of range")
            else:
                self.years.add(value)

    def read_day(self, node: Node, path: str) -> None:
        if not isinstance(node, MapNode):
            self.report(node, path, "expected an entry like {date: 2027-01-01, working: false}")
            return
        ok = True
        for key, (key_node, _) in node.entries.items():
            if key not in _DAY_KEYS:
                self.report(key_node, f"{path}.{key}", _unknown(key, _DAY_KEYS))
                ok = False
        first, last = self.read_span(node, path)
        working = node.get("working")
        if working is None:
            self.report(node, path, "missing 'working: true' (a working day) or 'working: false'")
            ok = False
        elif not (isinstance(working, ScalarNode) and isinstance(working.value, bool)):
            shown = working.value if isinstance(working, ScalarNode) else "a list or mapping"
            self.report(working, f"{path}.working", f"expected true or false, got {shown!r}")
            ok = False
        name_node = node.get("name")
        name = ""
        if name_node is not None:
            if _is_text(name_node):
                name = str(name_node.value)  # type: ignore[attr-defined]
            else:
                self.report(name_node, f"{path}.name", "expected text, e.g. 元旦")
                ok = False
        if not ok or first is None or last is None:
            return
        assert isinstance(working, ScalarNode)
        day = first
        while day <= last:
            earlier = self.days.get(day)
            if earlier is not None:
                self.report(
                    node,
                    path,
                    f"{day.isoformat()} is already set at {earlier.file}:{earlier.line}",
                )
                return
            self.days[day] = DayOverride(day, working.value, name, self.filename, node.line)
            day += timedelta(days=1)

    def read_span(self, node: MapNode, path: str) -> tuple[date | None, date | None]:
        single, start, end = node.get("date"), node.get("from"), node.get("to")
        if single is not None:
            if start is not None or end is not None:
                self.report(node, path, "write either 'date' or 'from'/'to', not both")
                return None, None
            day = self.read_date(single, f"{path}.date")
            return day, day
        if start is None and end is None:
            self.report(node, path, "missing 'date' (or a 'from'/'to' range)")
            return None, None
        if start is None or end is None:
            self.report(node, path, "a range needs both 'from' and 'to'")
            return None, None
        first = self.read_date(start, f"{path}.from")
        last = self.read_date(end, f"{path}.to")
        if first is None or last is None:
            return None, None
        if last < first:
            self.report(end, f"{path}.to", f"'to' {last} is before 'from' {first}")
            return None, None
        if (last - first).days >= _MAX_RANGE_DAYS:
            self.report(end, f"{path}.to", f"a range of more than {_MAX_RANGE_DAYS} days")
            return None, None
        return first, last

    def read_date(self, node: Node, path: str) -> date | None:
        value = node.value if isinstance(node, ScalarNode) else None
        if isinstance(value, datetime):
            self.report(node, path, f"expected a date without a time, got {value.isoformat()}")
            return None
        if isinstance(value, date):
            parsed: date | None = value
        elif isinstance(value, str):
            try:
                parsed = date.fromisoformat(value.strip())
            except ValueError:
                parsed = None
        else:
            parsed = None
        if parsed is None:
            self.report(node, path, f"expected a date like 2027-01-01, got {value!r}")
        elif not _MIN_YEAR <= parsed.year <= _MAX_YEAR:
            self.report(node, path, f"year {parsed.year} is out of range")
            return None
        return parsed


def _is_text(node: Node) -> bool:
    return isinstance(node, ScalarNode) and isinstance(node.value, str) and bool(node.value)


def _unknown(key: str, allowed: tuple[str, ...]) -> str:
    return f"unknown key {key!r}{did_you_mean(key, allowed)}; allowed: {', '.join(allowed)}"
