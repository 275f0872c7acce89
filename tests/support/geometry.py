"""GeoJSON shapes for the geometry tests."""

from __future__ import annotations

from typing import Any


def square(x: float, y: float, size: float) -> dict[str, Any]:
    """A GeoJSON Polygon: the square with its south-west corner at (x, y)."""
    ring = [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}
