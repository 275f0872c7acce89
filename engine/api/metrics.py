"""``GET /metrics``: Prometheus text exposition format, written by hand (no dependency).

Gauges are read from the database at scrape time by :class:`~engine.ops.Operations`
(open cases by workflow and state, pending and failed timers by kind, deliveries
by status); counters are kept in this process since it started (requests that
created cases or fired events, accepted or rejected by reason).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable

from engine.ops import Gauges

__all__ = ["CONTENT_TYPE", "Counters", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Counters:
    """Thread-safe counters of submissions: (kind, outcome, reason) → count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self.requests = 0
        self.request_checkouts = 0

    def request(self, checkouts: int) -> None:
        """One HTTP request answered, which checked out *checkouts* pooled connections."""
        with self._lock:
            self.requests += 1
            self.request_checkouts += checkouts

    def add(self, kind: str, outcome: str, reason: str = "") -> None:
        with self._lock:
            self._counts[(kind, outcome, reason)] += 1

    def traffic(self) -> tuple[int, int]:
        """(requests answered, pool checkouts they made)."""
        with self._lock:
            return self.requests, self.request_checkouts

    def snapshot(self) -> dict[tuple[str, str, str], int]:
        with self._lock:
            return dict(self._counts)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _sample(name: str, labels: dict[str, str], value: float) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    shown = int(value) if float(value).is_integer() else value
    return f"{name}{{{inner}}} {shown}" if inner else f"{name} {shown}"


def _family(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines.extend(_sample(name, labels, value) for labels, value in samples)
    return lines


def render(
    gauges: Gauges,
    counters: Counters,
    *,
    loop_running: bool,
    sweeps: int,
    pid: int | None = None,
    checkouts: int = 0,
) -> str:
    open_cases, pending = gauges.open_cases, gauges.pending_timers
    failed, sent = gauges.failed_timers, gauges.deliveries
    lines: list[str] = []
    lines += _family(
        "gengbao_cases_open",
        "gauge",
        "Open cases by workflow and state.",
        (({"workflow": w, "state": s}, n) for w, s, n in open_cases),
    )
    lines += _family(
        "gengbao_timers_pending",
        "gauge",
        "Pending timers (deadlines, reminders, escalation rungs) by kind.",
        (({"kind": k}, n) for k, n in pending),
    )
    lines += _family(
        "gengbao_timers_failed",
        "gauge",
        "Failed timers by kind; retry=scheduled will be tried again, exhausted waits "
        "for gengbao timers retry.",
        (({"kind": k, "retry": r}, n) for k, r, n in failed),
    )
    lines += _family(
        "gengbao_deliveries",
        "gauge",
        "Notification deliveries by status.",
        (({"status": s}, n) for s, n in sent),
    )
    counts = sorted(counters.snapshot().items())
    lines += _family(
        "gengbao_events_total",
        "counter",
        "Case creations (kind=create) and events (kind=event) submitted here since start.",
        (({"kind": k, "outcome": o, "reason": r}, n) for (k, o, r), n in counts),
    )
    lines += _family(
        "gengbao_timer_loop_running",
        "gauge",
        "1 while this process runs the timer and dispatch loop.",
        [({}, 1 if loop_running else 0)],
    )
    lines += _family(
        "gengbao_timer_sweeps_total",
        "counter",
        "Timer sweeps completed by this process since it started.",
        [({}, sweeps)],
    )
    requests, request_checkouts = counters.traffic()
    lines += _family(
        "gengbao_http_requests_total",
        "counter",
        "HTTP requests answered by this process since it started.",
        [({}, requests)],
    )
    lines += _family(
        "gengbao_http_pool_checkouts_total",
        "counter",
        "Database pool checkouts made by those requests (one per request: token, reads, event).",
        [({}, request_checkouts)],
    )
    lines += _family(
        "gengbao_pool_checkouts_total",
        "counter",
        "Database pool checkouts of this process since it started (requests and loops).",
        [({}, checkouts)],
    )
    if pid is not None:
        lines += _family(
            "gengbao_process_info",
            "gauge",
            "The process that answered (one per worker of gengbao serve --workers N).",
            [({"pid": str(pid)}, 1)],
        )
    return "\n".join(lines) + "\n"
