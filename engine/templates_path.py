"""Where notification templates are looked up, resolved from the settings file's place."""

from __future__ import annotations

import os
from pathlib import Path

from notifications.templates import TemplateStore

__all__ = ["template_store"]


def template_store(config: str | os.PathLike[str] | None = None) -> TemplateStore:
    """Admin overrides in ``templates/`` beside the settings file (default ``config/``),
    then the bundled templates."""
    base = Path(config).resolve().parent if config else Path("config")
    return TemplateStore([base / "templates"])
