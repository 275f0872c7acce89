"""People signing in to the pages: their passwords (:mod:`.credentials`) and their
browser sessions (:mod:`.sessions`).  The grid (:mod:`engine.grid`) says who people
are and what they hold; this package only says that a browser is one of them."""

from __future__ import annotations

from engine.people.credentials import Credentials, LockoutPolicy
from engine.people.sessions import UiSession, UiSessions

__all__ = ["Credentials", "LockoutPolicy", "UiSession", "UiSessions"]
