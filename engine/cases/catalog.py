"""Definition versions: registered by content hash, compiled once per version.

Loading a workflow file whose text changed adds a new version and makes it
current.  Which version new cases get is the workflow's newest
*activation* (``workflow_activations``), not the highest version number:
loading text identical to an older version activates that version again (a
revert, ``v1 (re-activated; was v2)``); loading the current text changes
nothing.  A folder sync (:meth:`Catalog.sync_folder`, run by most commands)
re-activates an older version only when the file's content differs from what
that file last activated, so an explicit load of another file stays current
until the folder file is edited.

Cases are pinned to the ``definition_id`` they started on, and the compiled
machine of each version is built once per process from the source stored in
the database, so a process that never saw the file can still run its cases.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, or_, select

from engine.clock import Clock
from engine.definitions import CompiledWorkflow, Workflow, validate_text
from engine.definitions.checks import TemplateCheck
from engine.errors import DefinitionError, StorageConflict, StorageUnavailable, UnknownWorkflow
from engine.store import connection, transaction
from engine.store.db import read_only
from engine.store.tables import cases, workflow_activations, workflow_versions
from engine.yamlkit import Diagnostic

__all__ = ["Catalog", "Definition", "Registered", "VersionInfo"]


@dataclass(frozen=True, kw_only=True)
class Registered:
    """What loading one file did: a new version, a re-activation, or nothing."""

    workflow: str
    version: int
    definition_id: int
    created: bool  # a new version was stored
    activated: bool  # it is now the current version and was not before
    was: int | None  # the version that was current before (None: the first load)
    path: str

    @property
    def outcome(self) -> str:
        """``new version`` | ``re-activated; was v2`` | ``unchanged`` (| ``not current; ...``)."""
        if self.created:
            return "new version"
        if self.activated:
            return f"re-activated; was v{self.was}"
        if self.was is not None and self.was != self.version:
            return f"unchanged; v{self.was} stays current"
        return "unchanged"

    def as_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "version": self.version,
            "definition_id": self.definition_id,
            "created": self.created,
            "activated": self.activated,
            "was": self.was,
            "outcome": self.outcome,
            "path": self.path,
        }


@dataclass(frozen=True, kw_only=True)
class VersionInfo:
    workflow: str
    version: int
    definition_id: int
    title: str
    content_hash: str
    loaded_at: Any
    open_cases: int
    total_cases: int
    current: bool  # new cases get this version
    activated_at: tuple[datetime, ...]  # every time it became current, oldest first

    def as_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "version": self.version,
            "definition_id": self.definition_id,
            "title": self.title,
            "content_hash": self.content_hash,
            "loaded_at": self.loaded_at,
            "open_cases": self.open_cases,
            "cases": self.total_cases,
            "current": self.current,
            "activated_at": list(self.activated_at),
        }


@dataclass(frozen=True, kw_only=True)
class Definition:
    """One version of a workflow, as :meth:`Catalog.definition` reads it."""

    chosen: VersionInfo
    versions: list[VersionInfo]  # every version of the workflow
    workflow: Workflow
    source: str  # the YAML text it was registered from


@dataclass(frozen=True)
class _Current:
    definition_id: int
    version: int


class Catalog:
    def __init__(
        self, engine: Engine, clock: Clock, templates: TemplateCheck | None = None
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.templates = templates
        self._compiled: dict[int, CompiledWorkflow] = {}
        self._versions: dict[int, int] = {}
        self._lock = threading.Lock()

    # -- registering -----------------------------------------------------
    def register_file(self, path: str | Path, *, sync: bool = False) -> Registered:
        """Register a file and make its content current (see the module docstring;
        with *sync*, an older version is re-activated only if the file changed)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problem = Diagnostic(str(path), 1, 1, "error", "", f"cannot read file: {exc}")
            raise DefinitionError([problem]) from exc
        return self.register_text(text, str(path), sync=sync)

    def register_text(
        self, text: str, path: str = "<workflow>", *, sync: bool = False
    ) -> Registered:
        result = validate_text(text, path, self.templates)
        if not result.ok or result.workflow is None:
            raise DefinitionError(result.errors)
        wf = result.workflow
        for _attempt in range(3):  # another process may register the same text at once
            try:
                with transaction(self.engine, "register a workflow in") as conn:
                    return self._insert(conn, wf, text, path, sync)
            except StorageConflict:
                continue
        raise StorageUnavailable(
            f"could not register {wf.id} ({path}): concurrent registrations kept "
            "colliding; try again"
        )

    def _insert(
        self, conn: Connection, wf: Workflow, text: str, path: str, sync: bool
    ) -> Registered:
        v = workflow_versions.c
        current = self._current(conn, wf.id)
        was = current.version if current is not None else None
        found = conn.execute(
            select(v.id, v.version).where(v.workflow == wf.id, v.content_hash == wf.content_hash)
        ).one_or_none()
        if found is not None:
            unchanged = Registered(
                workflow=wf.id,
                version=found.version,
                definition_id=found.id,
                created=False,
                activated=False,
                was=was,
                path=path,
            )
            if current is not None and current.definition_id == found.id:
                return unchanged
            if sync and self._last_from(conn, wf.id, path) == found.id:
                return unchanged  # the file has not changed since it activated this
            self._activate(conn, wf.id, found.id, path)
            return replace(unchanged, activated=True)
        latest = conn.execute(select(func.max(v.version)).where(v.workflow == wf.id)).scalar()
        version = (latest or 0) + 1
        definition_id = conn.execute(
            workflow_versions.insert()
            .values(
                workflow=wf.id,
                version=version,
                content_hash=wf.content_hash,
                title=wf.title,
                source=text,
                path=path,
                loaded_at=self.clock.now(),
            )
            .returning(v.id)
        ).scalar_one()
        self._activate(conn, wf.id, definition_id, path)
        return Registered(
            workflow=wf.id,
            version=version,
            definition_id=definition_id,
            created=True,
            activated=True,
            was=was,
            path=path,
        )

    def _activate(self, conn: Connection, workflow: str, definition_id: int, path: str) -> None:
        conn.execute(
            insert(workflow_activations).values(
                workflow=workflow,
                definition_id=definition_id,
                activated_at=self.clock.now(),
                path=_resolved(path),
            )
        )

    def _last_from(self, conn: Connection, workflow: str, path: str) -> int | None:
        """The definition the newest activation from the file *path* activated."""
        a = workflow_activations.c
        found: int | None = conn.execute(
            select(a.definition_id)
            .where(a.workflow == workflow, or_(a.path == _resolved(path), a.path == path))
            .order_by(a.id.desc())
            .limit(1)
        ).scalar()
        return found

    def sync_folder(self, folder: str | Path) -> list[Registered]:
        """Register every ``*.yaml`` in *folder*: a changed file activates its content
        (a new version, or an older one it now equals); an unchanged file does nothing."""
        return [self.register_file(p, sync=True) for p in sorted(Path(folder).glob("*.yaml"))]

    # -- reading -------------------------------------------------------------
    # versions() and definition() read on connections of their own.  latest(),
    # compiled() and version_number() take the caller's connection: the case
    # service asks them inside the event's transaction, so the version a case is
    # created on is the one current in that transaction's snapshot.
    def latest(self, conn: Connection, workflow: str) -> tuple[int, int]:
        """(definition_id, version) of the current version of *workflow* (its newest
        activation), which new cases get."""
        current = self._current(conn, workflow)
        if current is None:
            raise UnknownWorkflow(workflow)
        return current.definition_id, current.version

    def _current(self, conn: Connection, workflow: str) -> _Current | None:
        v, a = workflow_versions.c, workflow_activations.c
        row = conn.execute(
            select(v.id, v.version)
            .join(workflow_activations, a.definition_id == v.id)
            .where(a.workflow == workflow)
            .order_by(a.id.desc())
            .limit(1)
        ).one_or_none()
        if row is None:  # versions stored without an activation: the highest one
            row = conn.execute(
                select(v.id, v.version)
                .where(v.workflow == workflow)
                .order_by(v.version.desc())
                .limit(1)
            ).one_or_none()
        return _Current(row.id, row.version) if row is not None else None

    def compiled(self, conn: Connection, definition_id: int) -> CompiledWorkflow:
        cached = self._compiled.get(definition_id)
        if cached is not None:
            return cached
        v = workflow_versions.c
        row = conn.execute(
            select(v.source, v.path, v.workflow, v.version).where(v.id == definition_id)
        ).one_or_none()
        if row is None:
            raise UnknownWorkflow(str(definition_id))
        # Stored sources were valid when registered; templates are not re-checked here.
        result = validate_text(row.source, row.path or row.workflow)
        if result.workflow is None or result.errors:
            raise DefinitionError(result.errors)
        compiled = CompiledWorkflow(result.workflow)
        with self._lock:
            return self._compiled.setdefault(definition_id, compiled)

    def version_number(self, conn: Connection, definition_id: int) -> int:
        """The version number of a definition id (immutable, so cached)."""
        cached = self._versions.get(definition_id)
        if cached is None:
            cached = conn.execute(
                select(workflow_versions.c.version).where(workflow_versions.c.id == definition_id)
            ).scalar_one()
            self._versions[definition_id] = cached
        return cached

    def workflow_of(self, definition_id: int) -> Workflow:
        """The definition of a version by its id (a case's ``definition_id``), from the
        cache once compiled: what a page needs to title fields and states."""
        cached = self._compiled.get(definition_id)
        if cached is not None:
            return cached.workflow
        with connection(read_only(self.engine)) as conn:
            return self.compiled(conn, definition_id).workflow

    def compiled_latest(self, workflow: str) -> CompiledWorkflow:
        with connection(read_only(self.engine)) as conn:
            definition_id, _ = self.latest(conn, workflow)
            return self.compiled(conn, definition_id)

    def versions(self, workflow: str | None = None) -> list[VersionInfo]:
        """Every version, in (workflow, version) order, with its activations and case counts.

        Workflow definitions are not scoped to units: every viewer reads them all."""
        with connection(read_only(self.engine)) as conn:
            return self._versions_in(conn, workflow)

    def definition(self, workflow: str, version: int | None = None) -> Definition:
        """One version of *workflow* (default: the current one) with its siblings, its
        checked definition and its source text; UnknownWorkflow if there is none."""
        with connection(read_only(self.engine)) as conn:
            versions = self._versions_in(conn, workflow)
            chosen = next((v for v in versions if v.version == version), None)
            if version is None and versions:
                chosen = next((v for v in versions if v.current), versions[-1])
            if chosen is None:
                raise UnknownWorkflow(workflow, version)
            compiled = self.compiled(conn, chosen.definition_id)
            source: str = conn.execute(
                select(workflow_versions.c.source).where(
                    workflow_versions.c.id == chosen.definition_id
                )
            ).scalar_one()
        return Definition(
            chosen=chosen, versions=versions, workflow=compiled.workflow, source=source
        )

    def _versions_in(self, conn: Connection, workflow: str | None) -> list[VersionInfo]:
        v, a = workflow_versions.c, workflow_activations.c
        open_count = func.count(cases.c.id).filter(cases.c.closed_at.is_(None))
        stmt = (
            select(
                v.workflow,
                v.version,
                v.id,
                v.title,
                v.content_hash,
                v.loaded_at,
                open_count.label("open_cases"),
                func.count(cases.c.id).label("total"),
            )
            .select_from(workflow_versions.outerjoin(cases, cases.c.definition_id == v.id))
            .group_by(v.workflow, v.version, v.id, v.title, v.content_hash, v.loaded_at)
            .order_by(v.workflow, v.version)
        )
        activations = select(a.definition_id, a.activated_at).order_by(a.id)
        if workflow is not None:
            stmt = stmt.where(v.workflow == workflow)
            activations = activations.where(a.workflow == workflow)
        rows = conn.execute(stmt).all()
        when: dict[int, list[datetime]] = {}
        for definition_id, at in conn.execute(activations):
            when.setdefault(definition_id, []).append(at)
        current = {
            c.definition_id
            for name in sorted({r.workflow for r in rows})
            if (c := self._current(conn, name)) is not None
        }
        return [
            VersionInfo(
                workflow=r.workflow,
                version=r.version,
                definition_id=r.id,
                title=r.title,
                content_hash=r.content_hash,
                loaded_at=r.loaded_at,
                open_cases=r.open_cases,
                total_cases=r.total,
                current=r.id in current,
                activated_at=tuple(when.get(r.id, ())),
            )
            for r in rows
        ]


def _resolved(path: str) -> str:
    """A file's path made absolute (so two spellings of one file compare equal)."""
    file = Path(path)
    return str(file.resolve()) if file.is_file() else path
