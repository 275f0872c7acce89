"""The assessment (考评): per-unit figures over a period, rolled up the grid, and a score.

AssessmentConfig / load_config   weights, step measures, match radius (config/assessment.yaml)
assess                           the report, computed with SQL aggregation
list_findings                    survey findings one by one, found by which case or missed
render                           table | json | csv | xlsx | html
"""

from __future__ import annotations

from engine.assessment.config import AssessmentConfig, Measure, load_config, parse_config
from engine.assessment.findings import list_findings
from engine.assessment.render import FORMATS, render
from engine.assessment.report import Report, UnitRow, assess

__all__ = [
    "FORMATS",
    "AssessmentConfig",
    "Measure",
    "Report",
    "UnitRow",
    "assess",
    "list_findings",
    "load_config",
    "parse_config",
    "render",
]
