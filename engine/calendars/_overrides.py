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
from datetime import date, timedelta
from pathlib import Path
from types import MappingProxyType

from engine.errors import ConfigError
from engine.yamlkit import Diagnostic, MapNode, Node, NodeReader, is_null, parse_yaml

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


class _Reader(NodeReader):
    def __init__(self) -> None:
        super().__init__("")
        self.days: dict[date, DayOverride] = {}
        self.years: set[int] = set()

    @property
    def problems(self) -> list[Diagnostic]:
        return self.diagnostics

    def read_file(self, file: Path) -> None:
        self.filename = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.diagnostics.append(
                Diagnostic(self.filename, 1, 1, "error", "", f"cannot read the file: {exc}")
            )
            return
        if not any(
            line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()
        ):
            return  # only comments: no overrides
        root, diagnostics = parse_yaml(text, self.filename)
        self.diagnostics.extend(diagnostics)
        if root is None or diagnostics:
            return
        top = self.mapping(root, "", allowed=_TOP_KEYS, what="days, and optionally years")
        if top is None:
            return
        self.text(top.get("source"), "source", empty=False)
        years = top.get("years")
        for year in self.list_of(years, "years", self.year):
            self.years.add(year)
        days = top.get("days")
        if days is None:
            if years is None:
                self.report(root, "", "nothing here: add 'days' (a list) or 'years'")
            return
        if is_null(days):
            return  # "days:" with nothing under it
        for index, item in enumerate(self.items(days, "days", what=" of days")):
            self.read_day(item, f"days[{index}]")

    def year(self, node: Node, path: str) -> int | None:
        return self.integer(node, path, min=_MIN_YEAR, max=_MAX_YEAR)

    def read_day(self, node: Node, path: str) -> None:
        before = len(self.diagnostics)
        body = self.mapping(node, path, allowed=_DAY_KEYS, required=("working",))
        if body is None:
            return
        first, last = self.read_span(body, path)
        working = self.boolean(body.get("working"), f"{path}.working")
        name = self.text(body.get("name"), f"{path}.name", empty=False)
        if len(self.diagnostics) > before or first is None or last is None or working is None:
            return
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
            self.days[day] = DayOverride(day, working, name or "", self.filename, node.line)
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
        parsed = self.date(node, path)
        if parsed is not None and not _MIN_YEAR <= parsed.year <= _MAX_YEAR:
            self.report(node, path, f"year {parsed.year} is out of range")
            return None
        return parsed
