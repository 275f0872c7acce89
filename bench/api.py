"""Event throughput through HTTP (``gengbao serve``), beside the engine's in-process rate.

Usage::

    python bench/api.py [--cases N] [--repeat R] [--postgres URL] [--workers 1,2]

Each run walks N farmland cases through their full lifecycle (``POST /cases``
and the 7 ``POST /cases/{id}/events`` of ``tests/support/farmland.py``, each step by
its own actor's token), with 1 client and then with 8 concurrent clients
(threads, one keep-alive ``httpx.Client`` each, the cases split between
them).  The rate is operations per wall-clock second over the run.

The server is a real ``gengbao serve`` process on a loopback port, on a fresh
database (SQLite file; with ``--postgres`` also a fresh PostgreSQL schema,
dropped at the end), access log off; with 1 and with 2 workers
(``--workers 2``, PostgreSQL only: SQLite refuses it).  After the runs the
bench reads each worker's ``/metrics``: requests answered and the pool
checkouts they made (counted in the server by a pool ``checkout`` listener),
printed as checkouts per request.  Its timer sweep and dispatcher run,
but once an hour: the console channel would otherwise print every
notification of the run into the measurement.  Two in-process rates, each
one thread on its own fresh database: ``bench/events.py``'s engine path with
the effects the server writes (timer rows, notification outbox:
``--deployed``), and the same work the server does — an App whose timer sweep
and dispatcher run beside the thread and deliver every message (console,
discarded), as in ``gengbao serve``.  HTTP ÷ that one ("÷ same work") is what
HTTP costs.

Runs alternate between the paths within each repeat; the table shows medians
with min–max.  The machine may be shared and noisy (2 cores here: the
clients, the server and the database share them), so read medians and
ratios; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/api.py` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

from bench.events import Bench, postgres_bench, sqlite_bench  # noqa: E402
from bench.figures import Figure, record  # noqa: E402
from tests.support.api_server import ApiServer  # noqa: E402
from tests.support.databases import PostgresSchemas  # noqa: E402
from tests.support.farmland import CASE_DATA, LIFECYCLE, REPORTER, UNIT  # noqa: E402

WORKFLOW = "farmland_violation"
CONCURRENCY = (1, 8)
WARMUP_CASES = 5
OPS_PER_CASE = 1 + len(LIFECYCLE)
LOOP_SECONDS = 3600.0
OFFICE = "p-ddk-office1"  # may read /metrics


@dataclass
class Series:
    backend: str
    path: str
    rates: list[float]
    workers: int = 0  # 0: in-process
    clients: int = 1
    checkouts_per_request: float | None = None

    def median(self) -> float:
        return statistics.median(self.rates)


# ---------------------------------------------------------------- the HTTP path


class HttpBench:
    def __init__(self, server: ApiServer) -> None:
        self.server = server
        actors = sorted({REPORTER, OFFICE} | {actor for _, actor, _, _ in LIFECYCLE})
        with ThreadPoolExecutor(max_workers=4) as pool:
            made = pool.map(lambda a: server.token(a, "bench"), actors)
            self.tokens = dict(zip(actors, made, strict=True))

    def _auth(self, actor: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[actor]}"}

    def lifecycle(self, client: httpx.Client) -> None:
        body = {"workflow": WORKFLOW, "unit": UNIT, "data": CASE_DATA}
        created = client.post("/cases", json=body, headers=self._auth(REPORTER))
        if created.status_code != 201:
            raise RuntimeError(f"create: {created.status_code} {created.text}")
        case_id = created.json()["id"]
        for trigger, actor, payload, reached in LIFECYCLE:
            done = client.post(
                f"/cases/{case_id}/events",
                json={"trigger": trigger, "payload": payload},
                headers=self._auth(actor),
            )
            if done.status_code != 200 or done.json()["state"] != reached:
                raise RuntimeError(f"{trigger}: {done.status_code} {done.text}")

    def checkouts_per_request(self, workers: int) -> float:
        """Pool checkouts ÷ requests, over every worker's totals since it started."""
        seen: dict[int, tuple[int, int]] = {}
        token = self.tokens[OFFICE]
        for _ in range(50 * workers):  # new connections until every worker answered
            if len(seen) == workers:
                break
            with httpx.Client(base_url=self.server.base_url, timeout=60.0) as client:
                body = client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).text
            pid = re.search(r'^gengbao_process_info\{pid="(\d+)"\}', body, re.MULTILINE)
            requests = re.search(r"^gengbao_http_requests_total (\d+)$", body, re.MULTILINE)
            made = re.search(r"^gengbao_http_pool_checkouts_total (\d+)$", body, re.MULTILINE)
            if not (pid and requests and made):
                raise RuntimeError(f"/metrics without the request counters:\n{body}")
            seen[int(pid.group(1))] = (int(requests.group(1)), int(made.group(1)))
        total_requests = sum(r for r, _ in seen.values())
        return sum(c for _, c in seen.values()) / total_requests

    def run(self, cases: int, clients: int) -> float:
        """Operations per second for *cases* lifecycles split among *clients* threads."""
        shares = [cases // clients + (1 if i < cases % clients else 0) for i in range(clients)]
        start = threading.Barrier(clients + 1)
        errors: list[BaseException] = []

        def work(share: int) -> None:
            with httpx.Client(base_url=self.server.base_url, timeout=60.0) as client:
                self.lifecycle(client)  # connect and warm up before the clock starts
                start.wait()
                try:
                    for _ in range(share):
                        self.lifecycle(client)
                except BaseException as exc:  # reported after the run
                    errors.append(exc)

        threads = [threading.Thread(target=work, args=(s,)) for s in shares]
        for t in threads:
            t.start()
        start.wait()
        t0 = perf_counter()
        for t in threads:
            t.join()
        seconds = perf_counter() - t0
        if errors:
            raise errors[0]
        return cases * OPS_PER_CASE / seconds


# ---------------------------------------------------- in process, delivering


class DeliveringApp:
    """What the server does, without HTTP: an :class:`~engine.app.App` with its timer
    sweep and dispatcher running as ``gengbao serve`` runs them (console channel, its
    output discarded), driven by one thread calling the case service."""

    def __init__(self, url: str) -> None:
        from engine.api.loops import ServeLoops
        from engine.clock import SystemClock
        from engine.timers import SweepLoop
        from notifications.dispatch_loop import DispatchLoop
        from tests.support.farmland import farmland_app

        self.app = farmland_app(url, SystemClock(), notifications={"channels": {"console": {}}})
        self.loops = ServeLoops(
            SweepLoop(self.app.timers, LOOP_SECONDS),
            DispatchLoop(self.app.dispatcher, poll_seconds=LOOP_SECONDS),
        )

    def run(self, cases: int) -> float:
        service = self.app.cases
        with open(os.devnull, "w", encoding="utf-8") as sink, redirect_stdout(sink):
            started = perf_counter()
            for _ in range(cases):
                case_id = service.create_case(WORKFLOW, UNIT, REPORTER, CASE_DATA).id
                for trigger, actor, payload, _reached in LIFECYCLE:
                    service.submit_event(case_id, trigger, actor, payload)
            return cases * OPS_PER_CASE / (perf_counter() - started)

    def __enter__(self) -> DeliveringApp:
        self.loops.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        with open(os.devnull, "w", encoding="utf-8") as sink, redirect_stdout(sink):
            self.loops.stop()
        self.app.close()


@contextmanager
def delivering_app(backend: str, postgres: str | None) -> Iterator[DeliveringApp]:
    with tempfile.TemporaryDirectory(prefix="gengbao-bench-api-") as folder:
        schemas = PostgresSchemas(postgres) if backend == "postgres" and postgres else None
        url = schemas.create("bench_inproc") if schemas else f"sqlite:///{folder}/inproc.db"
        try:
            with DeliveringApp(url) as delivering:
                yield delivering
        finally:
            if schemas is not None:
                schemas.close()


# ---------------------------------------------------------------- databases


@contextmanager
def http_server(backend: str, postgres: str | None, workers: int) -> Iterator[ApiServer]:
    with tempfile.TemporaryDirectory(prefix="gengbao-bench-api-") as folder:
        workdir = Path(folder)
        schemas = PostgresSchemas(postgres) if backend == "postgres" and postgres else None
        url = schemas.create("bench") if schemas else f"sqlite:///{workdir / 'serve.db'}"
        server = ApiServer(
            url, workdir, loop_seconds=LOOP_SECONDS, access_log=False, workers=workers
        )
        try:
            server.start()
            yield server
        finally:
            server.close()
            if schemas is not None:
                schemas.close()


def measure(
    backend: str,
    open_bench: Callable[[], AbstractContextManager[Bench]],
    postgres: str | None,
    cases: int,
    repeat: int,
    worker_counts: Sequence[int],
) -> list[Series]:
    inproc = Series(backend, "in-process, 1 thread", [])
    delivering = Series(backend, "in-process + delivery", [])
    results = [inproc, delivering]
    with open_bench() as bench, delivering_app(backend, postgres) as same_work:
        bench.run_engine(WARMUP_CASES)
        same_work.run(WARMUP_CASES)
        for workers in worker_counts:
            http = {
                c: Series(
                    backend,
                    f"HTTP, {workers}w × {c} client{'s' if c > 1 else ''}",
                    [],
                    workers=workers,
                    clients=c,
                )
                for c in CONCURRENCY
            }
            with http_server(backend, postgres, workers) as server:
                client = HttpBench(server)
                client.run(WARMUP_CASES, 1)
                for r in range(repeat):
                    order: list[int] = [0, -1, *CONCURRENCY]  # 0, -1: in-process
                    for clients in order if r % 2 == 0 else reversed(order):
                        if clients == 0:
                            inproc.rates.append(bench.run_engine(cases).rate("lifecycle"))
                        elif clients == -1:
                            delivering.rates.append(same_work.run(cases))
                        else:
                            http[clients].rates.append(client.run(cases, clients))
                    print(
                        f"  {backend} {workers} worker(s) repeat {r + 1}/{repeat}: "
                        f"in-process {inproc.rates[-1]:,.0f} ops/s, "
                        f"with delivery {delivering.rates[-1]:,.0f}, "
                        + ", ".join(
                            f"HTTP×{c} {http[c].rates[-1]:,.0f} ops/s" for c in CONCURRENCY
                        ),
                        file=sys.stderr,
                        flush=True,
                    )
                per_request = client.checkouts_per_request(workers)
            for series in http.values():
                series.checkouts_per_request = per_request
            results += http.values()
    return results


def spread(values: Sequence[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"


def print_table(results: Sequence[Series], cases: int, repeat: int) -> None:
    print()
    print(
        f"gengbao API throughput: {cases} cases × (create + {len(LIFECYCLE)} events) = "
        f"{cases * OPS_PER_CASE} ops per run, median of {repeat} (min–max)"
    )
    header = (
        f"{'backend':<9} {'path':<24} {'ops/s':>22} {'ms/op':>7} {'÷ in-process':>13} "
        f"{'÷ same work':>12} {'÷ 1 client':>11} {'checkouts/req':>14}"
    )
    print(header)
    print("-" * len(header))
    by_backend: dict[str, list[Series]] = {}
    for s in results:
        by_backend.setdefault(s.backend, []).append(s)
    for backend, series in by_backend.items():
        base, same = series[0].median(), series[1].median()
        one = {s.workers: s.median() for s in series if s.workers and s.clients == 1}
        for s in series:
            per_client = f"{s.median() / one[s.workers]:.2f}" if s.workers else ""
            checkouts = (
                f"{s.checkouts_per_request:.2f}" if s.checkouts_per_request is not None else ""
            )
            print(
                f"{backend:<9} {s.path:<24} {spread(s.rates, ',.0f'):>22} "
                f"{1000 / s.median():>7.2f} {s.median() / base:>13.2f} "
                f"{s.median() / same:>12.2f} {per_client:>11} {checkouts:>14}"
            )
            if s.workers:
                record(
                    Figure(
                        bench="api",
                        name=f"{s.path}, {backend}",
                        value=s.median(),
                        unit="ops/s",
                        baseline="in-process + delivery",
                        baseline_value=same,
                        ratio=s.median() / same,
                        target="≥ 0.6" if s.clients == max(CONCURRENCY) else "",
                    )
                )
    print(
        "(ms/op for 8 clients is wall time per op with 8 in flight; ÷ in-process compares "
        "each rate with the engine called directly, ÷ same work with the engine called "
        "directly while its timer sweep and dispatcher run and deliver, as in the server; "
        "÷ 1 client, with 1 client on as many workers; checkouts/req: pool checkouts per "
        "HTTP request, the server's own count)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=100, help="cases per run (default 100)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per path (default 3)")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also run on PostgreSQL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument(
        "--workers",
        default="1,2",
        help="worker counts of the server, comma-separated (default 1,2; SQLite runs 1 only)",
    )
    args = parser.parse_args(argv)
    if args.cases < max(CONCURRENCY) or args.repeat < 1:
        parser.error(f"--cases must be at least {max(CONCURRENCY)}, --repeat at least 1")
    try:
        worker_counts = [int(w) for w in args.workers.split(",")]
    except ValueError:
        parser.error("--workers takes counts like 1,2")
    backends: list[tuple[str, Callable[[], AbstractContextManager[Bench]], list[int]]] = [
        ("sqlite", lambda: sqlite_bench(deployed=True), [w for w in worker_counts if w == 1])
    ]
    if args.postgres:
        url: str = args.postgres
        backends.append(("postgres", lambda: postgres_bench(url, deployed=True), worker_counts))
    results: list[Series] = []
    for backend, open_bench, counts in backends:
        if counts:
            results += measure(backend, open_bench, args.postgres, args.cases, args.repeat, counts)
    print_table(results, args.cases, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
