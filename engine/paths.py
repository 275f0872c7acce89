"""Where the project's content lives, resolved from the settings file's place.

Admin-edited content sits beside the settings file (default ``config/``):
``templates/`` overrides the bundled notification templates, ``calendars/``
adds or overrides working days, ``assessment.yaml`` holds the assessment's weights.
"""

from __future__ import annotations

import os
from pathlib import Path

from notifications.templates import TemplateStore

__all__ = ["assessment_file", "calendars_folder", "template_store"]


def _base(config: str | os.PathLike[str] | None) -> Path:
    return Path(config).resolve().parent if config else Path("config")


def template_store(config: str | os.PathLike[str] | None = None) -> TemplateStore:
    """Admin overrides in ``templates/`` beside the settings file, then the bundled ones."""
    return TemplateStore([_base(config) / "templates"])


def calendars_folder(config: str | os.PathLike[str] | None = None) -> Path | None:
    """``calendars/`` beside the settings file, if there is one."""
    folder = _base(config) / "calendars"
    return folder if folder.is_dir() else None


def assessment_file(config: str | os.PathLike[str] | None = None) -> Path | None:
    """``assessment.yaml`` beside the settings file, if there is one."""
    candidate = _base(config) / "assessment.yaml"
    return candidate if candidate.is_file() else None
