"""How escalation rungs are numbered, the same way at every edge.

A rung is stored and exposed as ``rung``: its index in the state's
``escalate`` list, from 0 (what templates see as ``deadline.rung``).  People
read it as a *level*: firing rung 0 raises the case to escalation level 1,
the number ``case show`` prints as ``escalation level`` and the API as
``escalation_level``.  Every JSON body that carries ``rung`` also carries
``level``, and the CLI's text prints ``level N`` — one number for one thing.
"""

from __future__ import annotations

__all__ = ["level_label", "rung_level"]


def rung_level(rung: int | None) -> int | None:
    """The escalation level *rung* raises its case to; None for a timer that is no rung."""
    return rung + 1 if rung is not None else None


def level_label(rung: int | None) -> str:
    """`` level N`` for a rung, empty for a timer that is no rung (CLI text)."""
    return f" level {rung + 1}" if rung is not None else ""
