"""The assessment service: the report and the findings list on the App's database.

Both read on a connection of their own and see the whole installation: they
are the district's tools (``gengbao report assessment``, ``gengbao survey
list``), run by the operator.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine

from engine.assessment.accountability import Register, accountability
from engine.assessment.config import AssessmentConfig
from engine.assessment.findings import list_findings
from engine.assessment.report import Report, assess

__all__ = ["Assessment"]


class Assessment:
    def __init__(self, engine: Engine, timezone: str) -> None:
        self.engine = engine
        self.timezone = timezone

    def report(
        self,
        date_from: dt.date,
        date_to: dt.date,
        config: AssessmentConfig,
        *,
        unit: str | None = None,
        level: str | None = None,
    ) -> Report:
        """Per-unit figures over the local dates *date_from* … *date_to* (see :func:`assess`)."""
        return assess(
            self.engine, date_from, date_to, config, self.timezone, unit=unit, level=level
        )

    def accountability(
        self, date_from: dt.date, date_to: dt.date, *, level: str | None = None
    ) -> Register:
        """The accountability register (约谈/问责台账) of the period (see
        :mod:`engine.assessment.accountability`)."""
        return accountability(self.engine, date_from, date_to, self.timezone, level=level)

    def findings(
        self,
        date_from: dt.date | None,
        date_to: dt.date | None,
        config: AssessmentConfig,
        *,
        unit: str | None = None,
        missed_only: bool = False,
    ) -> list[dict[str, Any]]:
        """Survey findings, each with the case that found it (see :func:`list_findings`)."""
        return list_findings(
            self.engine,
            date_from,
            date_to,
            radius_m=config.match_radius_m,
            unit=unit,
            workflow=config.workflow,
            missed_only=missed_only,
        )
