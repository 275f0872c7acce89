"""Passwords of people (``person_credentials``): set, check, and slow down guessing.

Only an argon2id hash is stored (:mod:`argon2`, the maintained binding of the
reference implementation, with its default cost: 64 MiB, 3 passes).  A sign-in
names a person by id or by phone (when exactly one active person has that phone).

Guessing is slowed down per person, in the database, so every server process
and every restart sees the same count: each failed sign-in adds one to the
person's ``failures``; from :attr:`LockoutPolicy.free_failures` failures on, the
person is locked out for ``lock_seconds``, doubling with each further failure up
to ``max_lock_seconds``.  While locked out even the right password is refused
(:class:`~engine.errors.SignInLocked`, which says how long to wait); a successful
sign-in resets the count.  An unknown person, a person without a password and a
wrong password are the same :class:`~engine.errors.SignInRefused`, after the same
amount of hashing work, so the answer tells nothing about which ids exist.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, Engine, insert, select, update

from engine.clock import Clock
from engine.errors import PasswordRefused, SignInLocked, SignInRefused, UnknownPerson
from engine.store import connection, transaction
from engine.store.db import read_only
from engine.store.tables import people, person_credentials

__all__ = ["MAX_PASSWORD", "MIN_PASSWORD", "Credentials", "LockoutPolicy"]

MIN_PASSWORD = 8
MAX_PASSWORD = 200
_MAX_LOGIN = 100


@dataclass(frozen=True, kw_only=True)
class LockoutPolicy:
    free_failures: int = 5  # failed sign-ins in a row before the first lock-out
    lock_seconds: int = 60
    max_lock_seconds: int = 3600

    def lock_for(self, failures: int) -> int:
        """Seconds of lock-out after the *failures*-th failure in a row (0: none)."""
        if failures < self.free_failures:
            return 0
        doublings = min(failures - self.free_failures, 16)
        return int(min(self.lock_seconds * 2**doublings, self.max_lock_seconds))


class Credentials:
    def __init__(self, engine: Engine, clock: Clock, policy: LockoutPolicy | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.policy = policy or LockoutPolicy()
        self.hasher = PasswordHasher()
        self._dummy = self.hasher.hash("gengbao: no such person")

    def set_password(self, person_id: str, password: str) -> None:
        """Set (or replace) *person_id*'s password; clears any lock-out.  UnknownPerson
        for an id the grid does not hold (or a service account, which uses tokens)."""
        if len(password) < MIN_PASSWORD:
            raise PasswordRefused(f"at least {MIN_PASSWORD} characters")
        if len(password) > MAX_PASSWORD:
            raise PasswordRefused(f"at most {MAX_PASSWORD} characters")
        digest = self.hasher.hash(password)
        now = self.clock.now()
        with transaction(self.engine) as conn:
            kind = conn.execute(
                select(people.c.kind).where(people.c.id == person_id)
            ).scalar_one_or_none()
            if kind != "person":
                raise UnknownPerson(person_id)
            values = {"password_hash": digest, "set_at": now, "failures": 0}
            values |= {"failed_at": None, "locked_until": None}
            done = conn.execute(
                update(person_credentials)
                .where(person_credentials.c.person_id == person_id)
                .values(**values)
            )
            if done.rowcount == 0:
                conn.execute(insert(person_credentials).values(person_id=person_id, **values))

    def has_password(self, person_id: str) -> bool:
        with connection(read_only(self.engine)) as conn:
            found = conn.execute(
                select(person_credentials.c.person_id).where(
                    person_credentials.c.person_id == person_id
                )
            ).first()
        return found is not None

    def sign_in(self, login: str, password: str) -> str:
        """The id of the active person *login* names (id or phone) whose password this
        is; SignInRefused or SignInLocked otherwise (a failure is counted and kept)."""
        login = login.strip()
        if not login or len(login) > _MAX_LOGIN or len(password) > MAX_PASSWORD:
            self._burn(password)
            raise SignInRefused
        now = self.clock.now()
        with transaction(self.engine) as conn:
            row = self._find(conn, login)
            if row is None:
                self._burn(password)
                outcome: Exception | None = SignInRefused()
            else:
                outcome = self._check(conn, row, password, now)
        if outcome is not None:
            raise outcome
        assert row is not None
        person: str = row.id
        return person

    # -- helpers -----------------------------------------------------------------
    def _find(self, conn: Connection, login: str) -> Any:
        cols = (
            people.c.id,
            person_credentials.c.password_hash,
            person_credentials.c.failures,
            person_credentials.c.locked_until,
        )
        base = (
            select(*cols)
            .join(person_credentials, person_credentials.c.person_id == people.c.id)
            .where(people.c.active.is_(True), people.c.kind == "person")
        )
        row = conn.execute(base.where(people.c.id == login)).one_or_none()
        if row is not None:
            return row
        by_phone = conn.execute(base.where(people.c.phone == login).limit(2)).all()
        return by_phone[0] if len(by_phone) == 1 else None

    def _check(
        self, conn: Connection, row: Any, password: str, now: dt.datetime
    ) -> Exception | None:
        """None when *password* is right (the count reset); else the error to raise,
        with the failure written in this transaction (so it commits)."""
        c = person_credentials.c
        if row.locked_until is not None and row.locked_until > now:
            self._burn(password)
            return SignInLocked(row.locked_until, _seconds(row.locked_until - now))
        if self._verify(row.password_hash, password):
            if row.failures or row.locked_until is not None:
                conn.execute(
                    update(person_credentials)
                    .where(c.person_id == row.id)
                    .values(failures=0, failed_at=None, locked_until=None)
                )
            if self.hasher.check_needs_rehash(row.password_hash):
                conn.execute(
                    update(person_credentials)
                    .where(c.person_id == row.id)
                    .values(password_hash=self.hasher.hash(password))
                )
            return None
        failures = int(row.failures) + 1
        lock = self.policy.lock_for(failures)
        until = now + dt.timedelta(seconds=lock) if lock else None
        conn.execute(
            update(person_credentials)
            .where(c.person_id == row.id)
            .values(failures=c.failures + 1, failed_at=now, locked_until=until)
        )
        if until is not None:
            return SignInLocked(until, lock)
        return SignInRefused()

    def _verify(self, digest: str, password: str) -> bool:
        try:
            return bool(self.hasher.verify(digest, password))
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError):  # a damaged row: never a way in
            return False

    def _burn(self, password: str) -> None:
        """The hashing work of a real check, so a refusal takes as long either way."""
        self._verify(self._dummy, password)


def _seconds(span: dt.timedelta) -> int:
    return max(1, int(span.total_seconds() + 0.999))
