"""Diagnostics: one problem in a source file, with its position and key path."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["Diagnostic", "Severity", "did_you_mean"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Diagnostic:
    """``FILE:LINE:COL: error: PATH: MESSAGE`` — LINE and COL are 1-based.

    Line 0 means "no position" (values built in Python, see
    :func:`engine.yamlkit.nodes.from_plain`): the text is then ``PATH: MESSAGE``.
    """

    file: str
    line: int
    column: int
    severity: Severity
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        if self.line == 0:
            return f"{where}{self.message}"
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {where}{self.message}"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "path": self.path,
            "message": self.message,
        }


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """A ``; did you mean 'x'?`` suffix when *name* is close to a known name."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
