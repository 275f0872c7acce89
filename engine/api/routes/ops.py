"""``/healthz`` (liveness), ``/readyz`` (database reachable, loop running), ``/metrics``."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from engine.api import metrics
from engine.api.auth import PrincipalDep
from engine.api.deps import ServicesDep
from engine.api.errors import error_response
from engine.api.schemas import ErrorBody
from engine.errors import NotPermitted
from engine.store import process_checkouts

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz", summary="Liveness: the process answers", responses={422: {"model": ErrorBody}}
)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database answers and the timer loop runs",
    responses={422: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
def readyz(services: ServicesDep) -> JSONResponse:
    database = "ok" if services.app.ops.database_reachable() else "unreachable"
    loop = "running" if services.loop_running else "stopped"
    checks: dict[str, Any] = {"database": database, "loop": loop}
    if database == "ok" and loop == "running":
        return JSONResponse({"status": "ready", **checks})
    return error_response(503, "not_ready", f"not ready: database {database}, loop {loop}", checks)


@router.get(
    "/metrics",
    responses={
        200: {
            "content": {metrics.CONTENT_TYPE: {"schema": {"type": "string"}}},
            "description": "Prometheus text format",
        },
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
        422: {"model": ErrorBody},
    },
    summary="Prometheus metrics (for the roles of `api.metrics_roles`)",
)
def get_metrics(services: ServicesDep, principal: PrincipalDep) -> PlainTextResponse:
    roles = services.options.metrics_roles
    if not services.app.grid.holds_any_role(principal.actor, roles):
        raise NotPermitted(principal.actor, "read the metrics", "-", roles)
    loop = services.loop
    body = metrics.render(
        services.app.ops.gauges(),
        services.counters,
        loop_running=services.loop_running,
        sweeps=loop.sweeps if loop is not None else 0,
        pid=os.getpid(),
        checkouts=process_checkouts(),
    )
    return PlainTextResponse(body, media_type=metrics.CONTENT_TYPE)
