"""Browser sessions of the pages (``ui_sessions``): server-side rows, one per sign-in.

The cookie carries a random id (:func:`secrets.token_urlsafe`, 256 bits); only its
SHA-256 is stored, so a copy of the database opens no session.  Each row holds the
session's CSRF token (every page form carries it, and a POST must send it back)
and its expiry; signing out deletes the row, and a person deactivated in the grid
loses every session at their next request.  Expired rows are removed when
someone signs in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select

from engine.clock import Clock
from engine.store import connection, transaction
from engine.store.db import read_only
from engine.store.tables import people, ui_sessions

__all__ = ["DEFAULT_LIFETIME", "UiSession", "UiSessions"]

DEFAULT_LIFETIME = dt.timedelta(hours=12)  # a duty shift
_MAX_COOKIE = 100


@dataclass(frozen=True, kw_only=True)
class UiSession:
    person: str
    name: str
    csrf: str
    expires_at: dt.datetime

    def csrf_matches(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(sent.encode(), self.csrf.encode())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class UiSessions:
    def __init__(
        self, engine: Engine, clock: Clock, lifetime: dt.timedelta = DEFAULT_LIFETIME
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.lifetime = lifetime

    def open(self, person: str) -> str:
        """A new session for *person* (already signed in): the cookie's value."""
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        with transaction(self.engine) as conn:
            conn.execute(delete(ui_sessions).where(ui_sessions.c.expires_at <= now))
            conn.execute(
                insert(ui_sessions).values(
                    id_hash=_digest(token),
                    person_id=person,
                    csrf=secrets.token_urlsafe(32),
                    created_at=now,
                    expires_at=now + self.lifetime,
                )
            )
        return token

    def find(self, token: str | None) -> UiSession | None:
        """The live session of cookie value *token* whose person is active, or None."""
        if not token or len(token) > _MAX_COOKIE or not token.isascii():
            return None
        s = ui_sessions.c
        with connection(read_only(self.engine)) as conn:
            row = conn.execute(
                select(s.person_id, s.csrf, s.expires_at, people.c.name)
                .join(people, people.c.id == s.person_id)
                .where(
                    s.id_hash == _digest(token),
                    s.expires_at > self.clock.now(),
                    people.c.active.is_(True),
                )
            ).one_or_none()
        if row is None:
            return None
        return UiSession(
            person=row.person_id, name=row.name, csrf=row.csrf, expires_at=row.expires_at
        )

    def close(self, token: str | None) -> None:
        """Sign out: the session's row is deleted (a repeat does nothing)."""
        if not token or len(token) > _MAX_COOKIE or not token.isascii():
            return
        with transaction(self.engine) as conn:
            conn.execute(delete(ui_sessions).where(ui_sessions.c.id_hash == _digest(token)))
