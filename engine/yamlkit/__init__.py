"""Positioned YAML for every file gengbao reads: workflows, grids, settings, calendars, ...

    nodes.py        YAML text → positioned nodes (strict booleans, no aliases, no
                    duplicate keys); :func:`from_plain` for values built in Python
    hints.py        plain words for the YAML syntax mistakes administrators make
    reader.py       :class:`NodeReader`: mappings with allowed/required keys and
                    did-you-mean, text, numbers, booleans, identifiers, durations,
                    time zones, dates, lists — every problem gathered, one wording
    diagnostics.py  :class:`Diagnostic` (``FILE:LINE:COL: error: PATH: MESSAGE``)
    durations.py    ``30m``, ``2h``, ``3d``, ``3 working days``

Nothing here knows what a workflow or a setting is.
"""

from __future__ import annotations

from engine.errors import DurationError
from engine.yamlkit.diagnostics import Diagnostic, Severity, did_you_mean
from engine.yamlkit.durations import Duration, parse_duration
from engine.yamlkit.nodes import (
    MapNode,
    Node,
    ScalarNode,
    SeqNode,
    from_plain,
    is_null,
    parse_yaml,
)
from engine.yamlkit.reader import IDENTIFIER, NodeReader, describe, join_path

__all__ = [
    "IDENTIFIER",
    "Diagnostic",
    "Duration",
    "DurationError",
    "MapNode",
    "Node",
    "NodeReader",
    "ScalarNode",
    "SeqNode",
    "Severity",
    "describe",
    "did_you_mean",
    "from_plain",
    "is_null",
    "join_path",
    "parse_duration",
    "parse_yaml",
]
