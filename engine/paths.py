"""Where the project's content lives, resolved from the settings."""

from __future__ import annotations

from pathlib import Path

from notifications.templates import TemplateStore

__all__ = ["template_store"]


def template_store(config: str | None = None) -> TemplateStore:
    """Admin overrides in ``config/templates`` (beside the settings file), then bundled."""
    base = Path(config).resolve().parent if config else Path("config")
    return TemplateStore([base / "templates"])
