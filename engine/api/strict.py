"""Unknown query parameters are errors (422), like unknown keys in a body.

``GET /cases?stat=open`` would otherwise list every case as if unfiltered.
The allowed names come from the application's own OpenAPI schema, so they
cannot drift from the routes.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.routing import BaseRoute

__all__ = ["known_query_parameters"]

_CACHE = "gengbao_query_names"


def _names(api: FastAPI) -> dict[tuple[str, str], frozenset[str]]:
    names: dict[tuple[str, str], frozenset[str]] = getattr(api.state, _CACHE, {})
    if not names:
        spec = api.openapi()
        for path, operations in spec.get("paths", {}).items():
            for method, operation in operations.items():
                params = operation.get("parameters", [])
                names[(method.upper(), path)] = frozenset(
                    p["name"] for p in params if p.get("in") == "query"
                )
        setattr(api.state, _CACHE, names)
    return names


async def known_query_parameters(request: Request) -> None:
    """A dependency of every route: refuse query parameters the route does not declare."""
    if not request.query_params:
        return
    route: BaseRoute | None = request.scope.get("route")
    path = getattr(route, "path", None)
    allowed = _names(request.app).get((request.method, str(path)), frozenset())
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        listed = ", ".join(sorted(allowed)) or "none"
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": f"unknown query parameter (allowed: {listed})",
                    "input": request.query_params.get(name),
                }
                for name in unknown
            ]
        )
