"""A real ``gengbao serve`` process for the API tests and ``bench/api.py``.

The server runs on a free loopback port against the given database, with a
settings file pointing at the repository's workflows and a grid file: the
demo grid plus one service account (``svc-patrol``, a patrol app's backend,
``village.member`` of 新华村).  Tokens are made with the CLI, as an
administrator would.  Output goes to files, never to pipes that could fill up.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.databases import PostgresSchemas
from tests.support.paths import GENGBAO, GRID_FILE, ROOT
from tests.support.processes import gengbao_env
from tests.support.receivers import free_port

__all__ = [
    "CONTRACT_ROUTES",
    "PHOTO_MAX_BYTES",
    "SERVICE",
    "SERVICE_UNIT",
    "ApiServer",
    "assert_error",
    "running_server",
    "write_grid",
]

SERVICE = "svc-patrol"
SERVICE_UNIT = "ddk-bq-xh"  # 新华村
PHOTO_MAX_BYTES = 65536  # photos.max_bytes of the test server: an oversized one is small


def write_grid(path: Path) -> Path:
    """The demo grid (its boundaries file by absolute path) plus the service account."""
    grid: dict[str, Any] = yaml.safe_load(GRID_FILE.read_text(encoding="utf-8"))
    if "boundaries" in grid:  # the demo boundaries, found from the copy's folder too
        grid["boundaries"] = str(GRID_FILE.parent / grid["boundaries"])
    grid["people"].append(
        {
            "id": SERVICE,
            "name": "巡查 App 后台",
            "kind": "service",
            "roles": [{"unit": SERVICE_UNIT, "role": "member"}],
        }
    )
    path.write_text(yaml.safe_dump(grid, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


class ApiServer:
    def __init__(
        self,
        database_url: str,
        workdir: Path,
        *,
        max_body_bytes: int = 65536,
        loop_seconds: float = 0.5,
        access_log: bool = True,
        workers: int = 1,
        channels: dict[str, Any] | None = None,
    ) -> None:
        """*channels*: the notification channels (default: the console); with them the
        messages' links point at this server (``notifications.base_url``)."""
        self.database_url = database_url
        self.workdir = workdir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.max_body_bytes = max_body_bytes
        self.settings = workdir / "gengbao.yaml"
        grid = write_grid(workdir / "grid.yaml")
        settings = {
            "workflows_dir": str(ROOT / "workflows"),
            "grid_file": str(grid),
            "api": {"max_body_bytes": max_body_bytes},
            "serve": {"sweep_seconds": loop_seconds, "dispatch_seconds": loop_seconds},
            "notifications": {"channels": {"console": {}}},
            "data_dir": str(workdir / "var"),  # patrol photos
            "photos": {"max_bytes": PHOTO_MAX_BYTES},
        }
        if channels is not None:
            settings["notifications"] = {"channels": channels, "base_url": self.base_url}
        self.settings.write_text(yaml.safe_dump(settings), encoding="utf-8")
        self.stdout = workdir / "serve.out"
        self.stderr = workdir / "serve.err"
        self.access_log = access_log
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return gengbao_env(self.database_url)

    def start(self, timeout: float = 60.0) -> None:
        command = [GENGBAO, "--config", str(self.settings), "serve", "--port", str(self.port)]
        if not self.access_log:
            command.append("--no-access-log")
        if self.workers != 1:
            command += ["--workers", str(self.workers)]
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self.env, cwd=ROOT
            )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        """Poll /readyz until 200, the process dies, or *timeout* seconds pass."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"gengbao serve exited {self.process.returncode}:\n{self.log()}"
                    )
                try:
                    if client.get("/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"gengbao serve not ready after {timeout}s:\n{self.log()}")

    def cli(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``gengbao ARGS`` on this server's settings; *input*: its standard input."""
        done = subprocess.run(
            [GENGBAO, "--config", str(self.settings), *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=ROOT,
            check=False,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done

    def token(self, actor: str, name: str | None = None) -> str:
        args = ["token", "create", "--actor", actor] + (["--name", name] if name else [])
        return self.cli(*args).stdout.strip()

    def tokens(self, actors: Iterable[str], name: str = "tests") -> dict[str, str]:
        """One token per actor (made in parallel: each ``token create`` is a process)."""
        wanted = list(actors)
        with ThreadPoolExecutor(max_workers=4) as pool:
            made = pool.map(lambda actor: self.token(actor, name), wanted)
            return dict(zip(wanted, made, strict=True))

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30.0, **kwargs)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait for the process; its exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def accepting(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def close(self) -> None:
        """Make sure the process is gone (kill it if SIGTERM was not enough)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)

    def log(self) -> str:
        parts = []
        for path in (self.stderr, self.stdout):
            if path.exists():
                parts.append(path.read_text(encoding="utf-8", errors="replace")[-4000:])
        return "\n".join(parts)


@contextmanager
def running_server(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    **options: Any,
) -> Iterator[ApiServer]:
    """A started server on a fresh database of *backend* (SQLite file or PostgreSQL schema);
    *options* go to :class:`ApiServer`."""
    workdir = tmp_path_factory.mktemp(f"api-{backend}")
    schemas: PostgresSchemas | None = None
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'gengbao.db'}"
    else:
        schemas = request.getfixturevalue("pg_schemas")  # skips without PostgreSQL
        url = schemas.create("api")
    server = ApiServer(url, workdir, **options)
    try:
        server.start()
        yield server
    finally:
        server.close()
        if schemas is not None:
            schemas.drop(url)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """*response* is the API's error shape with *status* and *code*; its body."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "message", "details"}, body
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body


# The contract routes of the HTTP API (issues 6 and 7), as (METHOD, path template).
CONTRACT_ROUTES = [
    ("POST", "/cases"),
    ("POST", "/cases/batch"),
    ("GET", "/cases"),
    ("GET", "/cases/{case_id}"),
    ("POST", "/cases/{case_id}/events"),
    ("GET", "/cases/{case_id}/history"),
    ("POST", "/cases/{case_id}/transfers"),
    ("GET", "/cases/{case_id}/transfers"),
    ("POST", "/cases/{case_id}/transfers/{transfer_id}/accept"),
    ("POST", "/cases/{case_id}/transfers/{transfer_id}/return"),
    ("POST", "/cases/{case_id}/signatures"),
    ("GET", "/cases/{case_id}/parties"),
    ("POST", "/cases/{case_id}/supervisions"),
    ("GET", "/cases/{case_id}/supervisions"),
    ("POST", "/cases/{case_id}/supervisions/{supervision_id}/reply"),
    ("GET", "/workflows"),
    ("GET", "/workflows/{name}"),
    ("POST", "/workflows/{name}/migrations"),
    ("GET", "/grid/units/{code}"),
    ("POST", "/patrols"),
    ("GET", "/patrols"),
    ("GET", "/patrols/{patrol_id}"),
    ("GET", "/notifications"),
    ("POST", "/cases/{case_id}/ack"),
    ("POST", "/cases/{case_id}/assign"),
    ("GET", "/tasks"),
    ("POST", "/notifications/{notification_id}/ack"),
    ("POST", "/patrols/{patrol_id}/photos"),
    ("GET", "/patrols/{patrol_id}/photos"),
    ("GET", "/photos/{sha256}"),
    ("GET", "/board"),
    ("GET", "/board/cases"),
    ("GET", "/assessment"),
    ("GET", "/assessment.csv"),
    ("GET", "/assessment.xlsx"),
    ("GET", "/assessment/charts/{name}.svg"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]
