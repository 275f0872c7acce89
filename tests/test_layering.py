"""Routes, CLI commands and pages only translate: they never reach the storage themselves.

Every module under ``engine/api``, ``engine/cli`` and ``engine/pages`` is parsed with :mod:`ast`
(not searched as text), so an import of ``engine.store.tables``, ``engine.store.db`` or
``sqlalchemy`` fails here however it is written: ``import sqlalchemy as sa``,
``from sqlalchemy.exc import …``, ``from engine.store import db``, ``from
...store.tables import cases``, or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EDGES = ("engine/api", "engine/cli", "engine/pages")
FORBIDDEN = ("engine.store.tables", "engine.store.db", "engine.store.migrations", "sqlalchemy")

# Modules allowed one of the imports above, with why.  Keep it empty.
NOT_YET: dict[str, set[str]] = {}


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every module *path* imports, relative imports resolved, ``from X import y`` as
    both ``X`` and ``X.y`` (``y`` may be a module: ``from engine import db``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = ".".join(path.relative_to(root).parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _under(module: str, packages: set[str] | tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def forbidden(modules: set[str]) -> set[str]:
    return {m for m in modules if _under(m, FORBIDDEN)}


def edge_files() -> list[Path]:
    return sorted(p for edge in EDGES for p in (ROOT / edge).rglob("*.py"))


@pytest.mark.parametrize("path", edge_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_route_or_command_imports_the_storage(path: Path) -> None:
    name = str(path.relative_to(ROOT))
    waived = NOT_YET.get(name, set())
    assert {m for m in forbidden(imported_modules(path)) if not _under(m, waived)} == set()


def test_the_walk_covers_the_routes_and_the_commands() -> None:
    names = {str(p.relative_to(ROOT)) for p in edge_files()}
    assert {"engine/api/routes/cases.py", "engine/api/metrics.py", "engine/cli/case.py"} <= names


@pytest.mark.parametrize(
    ("source", "where"),
    [
        ("import sqlalchemy as sa", "engine/api/x.py"),
        ("from sqlalchemy.exc import DBAPIError", "engine/api/x.py"),
        ("from engine.store import db", "engine/cli/x.py"),
        ("from engine.store.tables import cases", "engine/cli/x.py"),
        ("from ...store.tables import cases", "engine/api/routes/x.py"),
        ("from ..store import db", "engine/api/x.py"),
        ("def f():\n    from engine.store.db import read_only", "engine/api/routes/x.py"),
    ],
)
def test_every_spelling_of_a_storage_import_is_caught(
    source: str, where: str, tmp_path: Path
) -> None:
    path = tmp_path / where
    path.parent.mkdir(parents=True)
    path.write_text(source + "\n", encoding="utf-8")
    assert forbidden(imported_modules(path, tmp_path)) != set()


def test_a_service_import_is_not_caught(tmp_path: Path) -> None:
    path = tmp_path / "engine/api/routes/x.py"
    path.parent.mkdir(parents=True)
    path.write_text(
        "from engine.grid.visibility import ADMIN\nfrom ...dbx import y\nimport engine.database\n"
    )
    assert forbidden(imported_modules(path, tmp_path)) == set()
