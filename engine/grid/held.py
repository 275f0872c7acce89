"""What an actor holds on the grid, cached per process and checked against the grid stamp.

Every event needs the roles its actor holds on the case's chain.  Asking the
database each time costs one or two queries per event; instead the case
service reads the grid stamp (:data:`GRID_STAMP`, a number that triggers on
``units``, ``people`` and ``person_roles`` bump on every change: migration
0014) in the very statement that locks the case, and asks :class:`HeldRoles`
with it.  While the stamp is the one the cache was filled at, the answer comes
from memory; when any grid change has committed, the stamp differs and the
whole cache is dropped.  A miss costs one query, which reads the stamp it
answers for in the same statement, so an entry is never filed under a stamp
older than what it saw.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection, select

from engine.errors import UnknownPerson
from engine.store.tables import grid_stamp, people, person_roles, units

__all__ = ["GRID_STAMP", "HeldRoles", "Holdings"]

GRID_STAMP = select(grid_stamp.c.version).where(grid_stamp.c.id == 1).scalar_subquery()
MAX_ACTORS = 50_000  # a bound on memory: past it the cache starts over

_ROLE = (
    sa.join(person_roles, units, units.c.code == person_roles.c.unit_code)
    .select()
    .with_only_columns(person_roles.c.person_id, units.c.code, units.c.level, person_roles.c.role)
    .where(person_roles.c.active.is_(True))
    .subquery("held")
)
_HOLDINGS = (
    select(people.c.active, _ROLE.c.code, _ROLE.c.level, _ROLE.c.role, GRID_STAMP.label("stamp"))
    .select_from(people.outerjoin(_ROLE, _ROLE.c.person_id == people.c.id))
    .where(people.c.id == sa.bindparam("actor"))
)


@dataclass(frozen=True)
class Holdings:
    """One actor's standing on the grid: active or not, and its active roles by unit."""

    active: bool
    roles: frozenset[tuple[str, str]]  # (unit code, "LEVEL.ROLE")

    def on_path(self, path: str) -> set[str]:
        """``LEVEL.ROLE`` held on the units of a materialized *path* (``/a/b/c/``)."""
        codes = set(path.strip("/").split("/"))
        return {ref for code, ref in self.roles if code in codes}


class HeldRoles:
    """The per-process cache of :class:`Holdings`, valid for one grid stamp at a time."""

    def __init__(self) -> None:
        self._stamp: int | None = None
        self._by_actor: dict[str, Holdings] = {}
        self._lock = threading.Lock()
        self.misses = 0

    def of(self, conn: Connection, actor: str, stamp: int | None) -> Holdings:
        """*actor*'s holdings as of *stamp* (the grid stamp the caller's transaction read);
        raises UnknownPerson."""
        if stamp is not None and stamp == self._stamp:
            found = self._by_actor.get(actor)
            if found is not None:
                return found
        holdings, seen = self._load(conn, actor)
        if seen is None:  # no stamp row (removed by hand): nothing can be cached
            return holdings
        with self._lock:
            if seen != self._stamp:
                self._stamp, self._by_actor = seen, {}
            if len(self._by_actor) >= MAX_ACTORS:
                self._by_actor = {}
            self._by_actor[actor] = holdings
        return holdings

    def _load(self, conn: Connection, actor: str) -> tuple[Holdings, int | None]:
        self.misses += 1
        rows = conn.execute(_HOLDINGS, {"actor": actor}).all()
        if not rows:
            raise UnknownPerson(actor)
        roles = frozenset((r.code, f"{r.level}.{r.role}") for r in rows if r.code is not None)
        stamp = rows[0].stamp
        return Holdings(active=bool(rows[0].active), roles=roles), (
            None if stamp is None else int(stamp)
        )
