"""API tokens: who a request acts as.

A token reads ``gb_<id>_<secret>``: ``id`` is its public handle (``gengbao
token list``, ``gengbao token revoke``), ``secret`` 43 random URL-safe
characters from :func:`secrets.token_urlsafe`.  The token is shown once, when
it is created; only the SHA-256 of the whole token is stored, so a copy of the
database lets nobody act as anyone.

A token belongs to an actor of the grid: a person, or a service account
(``kind: service``) — a backend such as a patrol app's server, declared in
the grid file with explicit roles on units like anybody else.  Both act with
the roles they hold, under the same permission rules as the CLI, and see the
cases in the units where they hold a role and below (their *scope*).
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, insert, select, update

from engine.clock import Clock
from engine.errors import NotFound, NotPermitted
from engine.grid import registry as grid
from engine.grid.visibility import Viewer
from engine.store import connection, read_retrying, transaction
from engine.store.db import read_only
from engine.store.tables import people, person_roles, tokens, units

__all__ = ["TOKEN_PREFIX", "Principal", "TokenInfo", "TokenStore", "hash_token"]

TOKEN_PREFIX = "gb_"
_ID_BYTES = 5  # 10 hex characters: the handle shown by `token list`
_SECRET_BYTES = 32
_MAX_TOKEN_LENGTH = 200


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, kw_only=True)
class TokenInfo:
    id: str
    actor: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def prefix(self) -> str:
        """How the token text begins (enough to recognise it; not a secret)."""
        return f"{TOKEN_PREFIX}{self.id}_"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "prefix": self.prefix,
            "actor": self.actor,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True, kw_only=True)
class Principal:
    """The actor of a request and the units whose subtrees it may see."""

    actor: str
    kind: str  # person | service
    name: str
    token_id: str
    scope: tuple[tuple[str, str], ...]  # (unit code, unit path), outermost only

    @property
    def viewer(self) -> Viewer:
        """Who the services read and act for: this actor, under engine.grid.visibility."""
        return Viewer(self.actor)

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(code for code, _ in self.scope)


class TokenStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def create(self, actor: str, name: str | None = None) -> tuple[TokenInfo, str]:
        """A new token for *actor* (a person or service of the grid): its record and its text."""
        with transaction(self.engine) as conn:
            person = grid.get_person(conn, actor)
            if not person.active:
                raise NotPermitted(actor, "hold an API token", "-", [], "deactivated in the grid")
            token_id = secrets.token_hex(_ID_BYTES)
            text = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
            now = self.clock.now()
            conn.execute(
                insert(tokens).values(
                    id=token_id,
                    actor=actor,
                    name=name,
                    secret_hash=hash_token(text),
                    created_at=now,
                    revoked_at=None,
                )
            )
        return TokenInfo(id=token_id, actor=actor, name=name, created_at=now, revoked_at=None), text

    def list(self) -> list[TokenInfo]:
        with connection(read_only(self.engine)) as conn:
            rows = conn.execute(select(tokens).order_by(tokens.c.created_at, tokens.c.id))
            return [_info(r) for r in rows]

    def revoke(self, ref: str) -> TokenInfo:
        """Revoke the token whose id is or begins with *ref* (or whose text begins with it)."""
        handle = ref
        if ref.startswith(TOKEN_PREFIX):
            handle = ref[len(TOKEN_PREFIX) :].split("_", 1)[0]
        if not handle:
            raise NotFound(f"no token matches {ref!r}", token=ref)
        with transaction(self.engine) as conn:
            rows = conn.execute(
                select(tokens).where(tokens.c.id.startswith(handle, autoescape=True))
            ).all()
            exact = [r for r in rows if r.id == handle]
            if exact:
                rows = exact
            if not rows:
                raise NotFound(f"no token matches {ref!r}", token=ref)
            if len(rows) > 1:
                raise NotFound(
                    f"{ref!r} matches {len(rows)} tokens; give more of the id",
                    token=ref,
                    matches=sorted(r.id for r in rows),
                )
            row = rows[0]
            now = row.revoked_at or self.clock.now()
            if row.revoked_at is None:
                conn.execute(update(tokens).where(tokens.c.id == row.id).values(revoked_at=now))
        return TokenInfo(
            id=row.id, actor=row.actor, name=row.name, created_at=row.created_at, revoked_at=now
        )

    def revoke_named(self, name: str) -> builtins.list[TokenInfo]:
        """Revoke every active token called *name* (e.g. the demo tokens ``make run`` made)."""
        with transaction(self.engine) as conn:
            rows = conn.execute(
                select(tokens)
                .where(tokens.c.name == name, tokens.c.revoked_at.is_(None))
                .order_by(tokens.c.created_at, tokens.c.id)
            ).all()
            now = self.clock.now()
            if rows:
                conn.execute(
                    update(tokens)
                    .where(tokens.c.id.in_([r.id for r in rows]))
                    .values(revoked_at=now)
                )
        return [
            TokenInfo(id=r.id, actor=r.actor, name=r.name, created_at=r.created_at, revoked_at=now)
            for r in rows
        ]

    def authenticate(self, text: str) -> Principal | None:
        """The principal of an active token held by an active actor, or None.

        One query: the token, its actor, and the units where the actor holds
        an active role (its scope).  No cache: a revoked token is refused by the
        very next request, in every process.
        """
        if not text.startswith(TOKEN_PREFIX) or len(text) > _MAX_TOKEN_LENGTH:
            return None
        try:
            digest = hash_token(text)
        except UnicodeEncodeError:
            return None
        held = and_(person_roles.c.person_id == people.c.id, person_roles.c.active.is_(True))
        stmt = (
            select(
                tokens.c.id,
                people.c.id.label("actor"),
                people.c.kind,
                people.c.name,
                units.c.code,
                units.c.path,
            )
            .join(people, people.c.id == tokens.c.actor)
            .outerjoin(person_roles, held)
            .outerjoin(
                units, and_(units.c.code == person_roles.c.unit_code, units.c.active.is_(True))
            )
            .where(
                tokens.c.secret_hash == digest,
                tokens.c.revoked_at.is_(None),
                people.c.active.is_(True),
            )
        )
        # The first statement of every HTTP request: a dead pooled connection is met here,
        # and the lookup (a read) runs once more on a fresh one (no ping per checkout).
        rows = read_retrying(read_only(self.engine), lambda conn: conn.execute(stmt).all())
        if not rows:
            return None
        first = rows[0]
        paths = sorted({(r.path, r.code) for r in rows if r.path is not None})
        scope: list[tuple[str, str]] = []
        for path, code in paths:  # sorted: an ancestor comes before its descendants
            if not any(path.startswith(outer) for _, outer in scope):
                scope.append((code, path))
        return Principal(
            actor=first.actor,
            kind=first.kind,
            name=first.name,
            token_id=first.id,
            scope=tuple(scope),
        )


def _info(row: Any) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        actor=row.actor,
        name=row.name,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
