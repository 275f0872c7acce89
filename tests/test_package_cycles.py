"""No import cycle between the packages of ``engine`` and ``notifications``.

Imports are read with :mod:`ast` (nothing is executed) and folded to package
granularity: a module belongs to the most specific package of :data:`PACKAGES`
that contains it; the top-level modules of ``engine`` (``errors``, ``tables``,
``cases``, ``app``, …) and ``engine/store/`` are the package ``engine``.  Any
cycle fails the test, printed hop by hop with the imports that make it.

The top-level ``engine`` modules are today both the foundation every package
imports (``errors``, ``tables``, ``clock``, ``db``) and a few modules that sit
above other packages (the composition root ``app``; the case service runs
definitions).  Their imports into other packages close cycles through
``engine`` by construction; they are listed in :data:`KNOWN`, each with why,
until those modules move into folders of their own.  A listed import that no
longer exists fails the test too, so the list only shrinks.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "engine.api",
    "engine.assessment",
    "engine.calendars",
    "engine.cases",
    "engine.cli",
    "engine.definitions",
    "engine.duties",
    "engine.geo",
    "engine.grid",
    "engine.pages",
    "engine.patrols",
    "engine.people",
    "engine.settings",
    "engine.store",
    "engine.timers",
    "engine.versions",
    "engine.yamlkit",
    "notifications.channels",
    "notifications",
)
# The modules directly in engine/ are each a node of their own: the foundation
# every package imports (errors, clock, process, tabular) and the composition
# root above them all (app, settings, paths, ops, simulate).
TOP_MODULES = frozenset(p.stem for p in (ROOT / "engine").glob("*.py") if p.stem != "__init__")

# (importing module, imported package): imports allowed although they close a cycle.
KNOWN: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str) -> str | None:
    for package in PACKAGES:
        if module == package or module.startswith(f"{package}."):
            return package
    parts = module.split(".")
    if parts[0] == "engine" and len(parts) > 1 and parts[1] in TOP_MODULES:
        return f"engine.{parts[1]}"
    return "engine" if module == "engine" else None


def imported(path: Path, module: str) -> Iterator[str]:
    """Every module (or module.name) *path* imports, type-checking imports included."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                keep = len(anchor) - node.level + (1 if is_package else 0)
                base = ".".join([*anchor[:keep], *([base] if base else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


Edges = dict[str, dict[str, set[tuple[str, str]]]]


def package_imports() -> Edges:
    """package → imported package → {(importing module, imported name)}."""
    edges: Edges = {}
    for top in ("engine", "notifications"):
        for path in sorted((ROOT / top).rglob("*.py")):
            module = module_name(path)
            if module.startswith("engine.store.migrations"):
                continue  # Alembic's scripts, run by Alembic only
            source = package_of(module)
            assert source is not None
            for name in imported(path, module):
                target = package_of(name)
                if target is not None and target != source:
                    edges.setdefault(source, {}).setdefault(target, set()).add((module, name))
    return edges


def without_known(edges: Edges) -> Edges:
    kept: Edges = {}
    for source, targets in edges.items():
        for target, why in targets.items():
            rest = {(m, n) for m, n in why if (m, target) not in KNOWN}
            if rest:
                kept.setdefault(source, {})[target] = rest
    return kept


def find_cycle(edges: Edges) -> list[str] | None:
    """One cycle of packages (first = last), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in sorted(edges.get(node, {})):
            found = visit(target, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(edges):
        found = visit(start, [])
        if found:
            return found
    return None


def describe(cycle: list[str], edges: Edges) -> str:
    lines = [" → ".join(cycle)]
    for source, target in itertools.pairwise(cycle):
        for module, name in sorted(edges[source][target])[:3]:
            lines.append(f"  {source} → {target}: {module} imports {name}")
    return "\n".join(lines)


def test_no_import_cycle_between_packages() -> None:
    edges = without_known(package_imports())
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle between packages:\n" + describe(cycle, edges)


def test_every_known_import_still_exists() -> None:
    edges = package_imports()
    present = {
        (m, target) for targets in edges.values() for target, why in targets.items() for m, _ in why
    }
    assert sorted(KNOWN - present) == [], "no longer imported: remove from KNOWN"


def test_the_storage_room_needs_only_the_errors_of_the_engine() -> None:
    """engine/store sits under every service: it may import the engine's errors and
    clock (foundation modules), nothing else."""
    used = set()
    for path in sorted((ROOT / "engine" / "store").rglob("*.py")):
        module = module_name(path)
        used |= {
            name.rsplit(".", 1)[0] if name.count(".") > 1 else name
            for name in imported(path, module)
            if name.startswith("engine.") and not name.startswith("engine.store")
        }
    assert used <= {"engine.errors", "engine.clock"}, sorted(used)


def test_the_cycle_finder_finds_a_cycle_and_names_the_imports() -> None:
    edges: Edges = {
        "engine.timers": {"notifications": {("engine.timers.sweep", "notifications.outbox")}},
        "notifications": {"engine.timers": {("notifications.dispatch", "engine.timers.sweep")}},
    }
    cycle = find_cycle(edges)
    assert cycle == ["engine.timers", "notifications", "engine.timers"]
    assert "notifications.dispatch imports engine.timers.sweep" in describe(cycle, edges)
    assert find_cycle({"a": {"b": {("a.x", "b.y")}}}) is None
