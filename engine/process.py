"""Who this process is, for the rows it claims (timers, deliveries)."""

from __future__ import annotations

import os
import socket

__all__ = ["worker_id"]


def worker_id() -> str:
    """``HOST:PID``: names the process holding a claim or a lease."""
    return f"{socket.gethostname()}:{os.getpid()}"
