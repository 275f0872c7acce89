"""What every route needs, stored on the FastAPI application and handed out as dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from engine.api.metrics import Counters
from engine.api.options import ApiOptions
from engine.grid.tokens import TokenStore

if TYPE_CHECKING:
    from engine.api.loops import ServeLoops
    from engine.app import App
    from engine.timers import SweepLoop

__all__ = ["Services", "ServicesDep", "get_services"]


@dataclass
class Services:
    app: App
    tokens: TokenStore
    options: ApiOptions
    counters: Counters
    loop: ServeLoops | SweepLoop | None = None

    @property
    def loop_running(self) -> bool:
        return self.loop is not None and self.loop.running


async def get_services(request: Request) -> Services:
    """``async``: no I/O here, so FastAPI need not send it to the thread pool."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
