"""The assessment service: the report and the findings list on the App's database.

Both read on a connection of their own.  The CLI's operator sees the whole
installation (``gengbao report assessment``, ``gengbao survey list``); the report
also takes a viewer (``GET /assessment``, the dashboard): the rows of its units.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from engine.assessment.accountability import Register, accountability
from engine.assessment.config import AssessmentConfig, load_config
from engine.assessment.findings import list_findings
from engine.assessment.report import Report, assess
from engine.grid.visibility import ADMIN, Viewer

__all__ = ["Assessment"]


class Assessment:
    def __init__(self, engine: Engine, timezone: str, config_file: Path | None = None) -> None:
        self.engine = engine
        self.timezone = timezone
        self.config_file = config_file  # assessment.yaml beside the settings, if any

    def config(self) -> AssessmentConfig:
        """The installation's weights: ``assessment.yaml`` beside the settings file, else
        the built-in defaults (the same as the bundled file).  Read on each call, so an
        edited file counts at the next report."""
        return load_config(self.config_file) if self.config_file else AssessmentConfig()

    def report(
        self,
        date_from: dt.date,
        date_to: dt.date,
        config: AssessmentConfig,
        *,
        unit: str | None = None,
        level: str | None = None,
        viewer: Viewer | str = ADMIN,
    ) -> Report:
        """Per-unit figures over the local dates *date_from* … *date_to* (see :func:`assess`),
        the rows of the units *viewer* sees."""
        return assess(
            self.engine,
            date_from,
            date_to,
            config,
            self.timezone,
            unit=unit,
            level=level,
            viewer=viewer,
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
