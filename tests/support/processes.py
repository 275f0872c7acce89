"""Running ``gengbao`` as a separate process, the way an operator would."""

from __future__ import annotations

import os

from tests.support.paths import GENGBAO

__all__ = ["GENGBAO", "gengbao_env"]


def gengbao_env(database_url: str) -> dict[str, str]:
    """This process's environment for a ``gengbao`` child on *database_url*.

    ``$GENGBAO_CONFIG`` is dropped, so a developer's own settings file never
    leaks into a test; the database comes from ``$GENGBAO_DATABASE_URL``.
    """
    env = {k: v for k, v in os.environ.items() if k != "GENGBAO_CONFIG"}
    env["GENGBAO_DATABASE_URL"] = database_url
    return env
