"""A migrated SQLite file with the demo grid, made once and copied for each Hypothesis example.

A ``RuleBasedStateMachine`` cannot take pytest fixtures, so its databases
live in a folder of their own: each example takes a :meth:`~SqliteTemplate.copy`
in a subfolder and hands it back with :meth:`~SqliteTemplate.discard` in its
``teardown``; the module removes the whole folder at its end
(:meth:`~SqliteTemplate.remove`, from a module-scoped autouse fixture).
Nothing is created on import, so collecting the tests leaves nothing behind.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from engine.grid.registry import load_grid
from engine.store.db import make_engine, upgrade
from tests.support.paths import GRID_FILE

__all__ = ["SqliteTemplate"]


class SqliteTemplate:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.folder: Path | None = None

    def copy(self, name: str = "case.db") -> Path:
        """A fresh copy of the template, alone in a new subfolder."""
        template = self._template()
        target = Path(tempfile.mkdtemp(dir=template.parent)) / name
        shutil.copyfile(template, target)
        return target

    def copies(self) -> list[Path]:
        """The subfolders of copies not discarded yet."""
        return sorted(p for p in self.folder.iterdir() if p.is_dir()) if self.folder else []

    def discard(self, copy: Path) -> None:
        """Remove *copy* and its subfolder (its -wal and -shm files too)."""
        shutil.rmtree(copy.parent)

    def remove(self) -> None:
        """Remove the template and every copy left."""
        if self.folder is not None:
            shutil.rmtree(self.folder)
            self.folder = None

    def _template(self) -> Path:
        if self.folder is None:
            folder = Path(tempfile.mkdtemp(prefix=self.prefix))
            engine = make_engine(f"sqlite:///{folder / 'template.db'}")
            try:
                upgrade(engine)
                load_grid(engine, GRID_FILE)
            finally:
                engine.dispose()
            self.folder = folder
        return self.folder / "template.db"
