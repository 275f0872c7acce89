"""Bearer-token authentication: ``Authorization: Bearer TOKEN`` → the request's principal.

Tokens are made with ``gengbao token create`` (see :mod:`engine.grid.tokens`).  A
missing, malformed, unknown or revoked token, or one whose actor has left
the grid, is 401 with ``WWW-Authenticate: Bearer``.  What the principal may
do is decided by the engine's permission rules (403); what it may see, the
services decide in their queries for :attr:`~engine.grid.tokens.Principal.viewer`
(:mod:`engine.grid.visibility`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engine.api.deps import ServicesDep
from engine.errors import Unauthenticated
from engine.grid.tokens import Principal

__all__ = ["PrincipalDep", "bearer", "current_principal"]

bearer = HTTPBearer(
    auto_error=False,
    description="a token from `gengbao token create --actor PERSON_OR_SERVICE_ID`",
)


def current_principal(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthenticated("send 'Authorization: Bearer TOKEN'")
    principal = services.tokens.authenticate(credentials.credentials)
    if principal is None:
        raise Unauthenticated("the token is unknown or revoked, or its actor left the grid")
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]
