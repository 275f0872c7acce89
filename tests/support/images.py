"""Small real photos for upload tests, built by hand (no imaging library needed).

:func:`png` writes a valid PNG — signature, ``IHDR``, one zlib-compressed ``IDAT``,
``IEND``, each chunk with its CRC — of one colour, so two colours are two different
files (two SHA-256 hashes) that any browser or viewer opens.
"""

from __future__ import annotations

import struct
import zlib

__all__ = ["png"]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(rgb: tuple[int, int, int], width: int = 8, height: int = 8) -> bytes:
    """A *width* × *height* PNG filled with *rgb* (8-bit truecolour, no alpha)."""
    row = b"\x00" + bytes(rgb) * width  # filter type 0 (none), then the pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(row * height))
        + _chunk(b"IEND", b"")
    )
