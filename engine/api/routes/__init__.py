"""The HTTP routes, one module per resource."""

from __future__ import annotations

from engine.api.routes import cases, grid, notifications, ops, patrols, supervision, workflows

__all__ = ["ROUTERS"]

ROUTERS = (
    cases.router,
    workflows.router,
    grid.router,
    patrols.router,
    notifications.router,
    ops.router,
    supervision.router,
)
