"""The HTTP routes, one module per resource."""

from __future__ import annotations

from engine.api.routes import (
    assessment,
    assign,
    board,
    cases,
    countersign,
    grid,
    migrations,
    notifications,
    ops,
    patrols,
    photos,
    supervision,
    transfers,
    workflows,
)

__all__ = ["ROUTERS"]

ROUTERS = (
    cases.router,
    countersign.router,
    workflows.router,
    migrations.router,
    grid.router,
    patrols.router,
    notifications.router,
    assign.router,
    ops.router,
    transfers.router,
    supervision.router,
    board.router,
    photos.router,
    assessment.router,
)
