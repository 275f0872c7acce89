"""Definition versions: registered by content hash, compiled once per version.

Loading a workflow file whose text changed adds a new version; loading the
same text again changes nothing.  Cases are pinned to the ``definition_id``
they started on, and the compiled machine of each version is built once per
process from the source stored in the database, so a process that never saw
the file can still run its cases.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import IntegrityError

from engine.clock import Clock
from engine.definitions import CompiledWorkflow, Workflow, validate_text
from engine.definitions.checks import TemplateCheck
from engine.errors import DefinitionError, StorageError, UnknownWorkflow
from engine.tables import cases, workflow_versions

__all__ = ["Catalog", "Registered", "VersionInfo"]


@dataclass(frozen=True)
class Registered:
    workflow: str
    version: int
    definition_id: int
    created: bool
    path: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "version": self.version,
            "definition_id": self.definition_id,
            "created": self.created,
            "path": self.path,
        }


@dataclass(frozen=True)
class VersionInfo:
    workflow: str
    version: int
    definition_id: int
    title: str
    content_hash: str
    loaded_at: Any
    open_cases: int
    total_cases: int

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
        }


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
    def register_file(self, path: str | Path) -> Registered:
        text = Path(path).read_text(encoding="utf-8")
        return self.register_text(text, str(path))

    def register_text(self, text: str, path: str = "<workflow>") -> Registered:
        result = validate_text(text, path, self.templates)
        if not result.ok or result.workflow is None:
            raise DefinitionError(result.errors)
        wf = result.workflow
        for _attempt in range(3):  # another process may register the same text at once
            try:
                with self.engine.begin() as conn:
                    return self._insert(conn, wf, text, path)
            except IntegrityError:
                continue
        raise StorageError(
            f"could not register {wf.id} ({path}): concurrent registrations kept "
            "colliding; try again"
        )

    def _insert(self, conn: Connection, wf: Workflow, text: str, path: str) -> Registered:
        v = workflow_versions.c
        found = conn.execute(
            select(v.id, v.version).where(v.workflow == wf.id, v.content_hash == wf.content_hash)
        ).one_or_none()
        if found is not None:
            return Registered(wf.id, found.version, found.id, False, path)
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
        return Registered(wf.id, version, definition_id, True, path)

    def sync_folder(self, folder: str | Path) -> list[Registered]:
        """Register every ``*.yaml`` in *folder* (unchanged files add nothing)."""
        return [self.register_file(p) for p in sorted(Path(folder).glob("*.yaml"))]

    # -- reading -------------------------------------------------------------
    def latest(self, conn: Connection, workflow: str) -> tuple[int, int]:
        """(definition_id, version) of the newest version of *workflow*."""
        v = workflow_versions.c
        row = conn.execute(
            select(v.id, v.version)
            .where(v.workflow == workflow)
            .order_by(v.version.desc())
            .limit(1)
        ).one_or_none()
        if row is None:
            raise UnknownWorkflow(workflow)
        return row.id, row.version

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

    def compiled_latest(self, workflow: str) -> CompiledWorkflow:
        with self.engine.connect() as conn:
            definition_id, _ = self.latest(conn, workflow)
            return self.compiled(conn, definition_id)

    def versions(self, conn: Connection, workflow: str | None = None) -> list[VersionInfo]:
        v = workflow_versions.c
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
        if workflow is not None:
            stmt = stmt.where(v.workflow == workflow)
        return [
            VersionInfo(
                r.workflow,
                r.version,
                r.id,
                r.title,
                r.content_hash,
                r.loaded_at,
                r.open_cases,
                r.total,
            )
            for r in conn.execute(stmt)
        ]
