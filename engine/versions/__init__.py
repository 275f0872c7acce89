"""Workflow versions and the cases on them: moving open cases onto another version
(:mod:`engine.versions.moves`) and replaying closed ones against it first
(:mod:`engine.versions.replay`)."""

from engine.versions.moves import CaseMove, MigrationPlan, VersionMoves, parse_state_map

__all__ = ["CaseMove", "MigrationPlan", "VersionMoves", "parse_state_map"]
