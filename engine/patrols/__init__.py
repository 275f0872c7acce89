"""Patrols (巡查): the ledger, patrol obligations with reminders, survey findings.

Patrols       the facade the App builds: rules, ledger, obligations, survey import
├── rules        the rules file → PatrolRule (positioned errors)
├── periods      week / month / N days in a time zone
├── obligations  periods per unit, the ``patrol`` timer handler, missed-patrol facts
├── ledger       record / list / open a case from a finding
├── export       the ledger as a district prints it (CSV / XLSX)
├── photos       patrol photos stored by SHA-256 under the data folder, and their check
└── survey       survey and satellite findings from CSV
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from engine.calendars import WorkingCalendar
from engine.cases.service import CaseService
from engine.clock import Clock
from engine.errors import PatrolRulesError, SurveyFileError, UnknownPatrol
from engine.patrols.ledger import Ledger, PatrolLinks, PatrolView
from engine.patrols.obligations import KIND, LoadSummary, Obligations
from engine.patrols.periods import Every, Period, parse_every, period_of
from engine.patrols.rules import PatrolRule, RulesFile, load_rules
from engine.patrols.survey import ImportResult, import_csv

__all__ = [
    "KIND",
    "Every",
    "ImportResult",
    "Ledger",
    "LoadSummary",
    "Obligations",
    "PatrolLinks",
    "PatrolRule",
    "PatrolRulesError",
    "PatrolView",
    "Patrols",
    "Period",
    "RulesFile",
    "SurveyFileError",
    "UnknownPatrol",
    "load_rules",
    "parse_every",
    "period_of",
]


class Patrols:
    """Everything patrol-related on one database, in one object (built by the App)."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        calendar: WorkingCalendar,
        cases: CaseService,
        timezone: str,
        template_problem: Callable[[str], str | None] | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.timezone = timezone
        self._template_problem = template_problem
        self.obligations = Obligations(engine, clock, calendar, timezone)
        self.ledger = Ledger(engine, clock, cases, self.obligations, timezone)

    def load_rules(self, path: str | Path) -> LoadSummary:
        """Check a rules file (every problem at once) and make it the active set."""
        return self.obligations.load(load_rules(path, self.timezone, self._template_problem))

    def import_survey(self, path: str | Path, source: str = "年度变更调查") -> ImportResult:
        return import_csv(self.engine, self.clock, path, self.timezone, source)
