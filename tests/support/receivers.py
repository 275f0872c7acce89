"""Loopback servers that notification tests send to: real SMTP, real HTTP, and silence.

Nothing here mocks a protocol: channels talk to these over real sockets on
127.0.0.1, and tests inspect what arrived.  Every server is a context
manager that binds a free port on entry and is fully stopped (threads joined,
sockets closed) on exit, so pytest's warnings-as-errors sees no leaks.

    with SmtpReceiver() as smtp:                  # aiosmtpd on 127.0.0.1:<free>
        smtp.host, smtp.port
        smtp.refuse("nobody@example.org", "550 5.1.1 no such user")
        ...send...
        mail = smtp.messages[0]                   # ReceivedMail
        mail.message["Subject"], mail.message.get_content(), mail.rcpt_tos

    with HttpReceiver() as http:                  # ThreadingHTTPServer on 127.0.0.1:<free>
        http.url("/hook?key=abc")                 # "http://127.0.0.1:<port>/hook?key=abc"
        http.reply(Reply(500), Reply(200, {"errcode": 0}))   # answered in order, then default
        http.reply(Reply(200, delay=5))           # hangs up to 5 s (released by stop())
        ...send...
        req = http.requests[0]                    # ReceivedRequest
        req.method, req.path, req.query["key"], req.headers["content-type"], req.json()
        http.stop()                               # now down: connections are refused

    closed_url()        # an http URL on a port nothing listens on (connection refused)
    with SilentServer() as silent:                # accepts connections, never says a word
        silent.port                               # an SMTP or HTTP client times out on it

Reused by the dispatcher's tests and benchmarks: import from ``tests.support.receivers``.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = [
    "HttpReceiver",
    "ReceivedMail",
    "ReceivedRequest",
    "Reply",
    "SilentServer",
    "SmtpReceiver",
    "closed_url",
    "free_port",
]

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port


def closed_url(path: str = "/") -> str:
    """An http URL where nothing listens: connecting to it is refused."""
    return f"http://{LOCALHOST}:{free_port()}{path}"


# -- SMTP ----------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage  # parsed with email.policy.default: headers decoded


class _SmtpHandler:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        with self.receiver._lock:
            refusal = self.receiver._refusals.get(address.lower())
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            raw=raw,
            message=parsed,
        )
        with self.receiver._lock:
            self.receiver.messages.append(mail)
        return "250 Message accepted for delivery"


class _Controller(Controller):
    """A Controller on port 0: the port the OS chose is read back once listening."""

    def _trigger_server(self) -> None:
        server = cast(asyncio.Server, self.server)
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class _Running:
    """``with server:`` starts it and always stops it (threads joined, sockets closed)."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SmtpReceiver(_Running):
    """An SMTP server on 127.0.0.1 that keeps every message it accepts.

    *tls_context* (a server context) offers STARTTLS, *require_starttls*
    insists on it; *implicit_tls* wraps the whole connection instead (port
    465 style).  *login* = (username, password) enables AUTH PLAIN/LOGIN with
    that one account (aiosmtpd only allows AUTH over TLS).
    """

    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        require_starttls: bool = False,
        implicit_tls: bool = False,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.messages: list[ReceivedMail] = []
        self.logins: list[str] = []
        self._refusals: dict[str, str] = {}
        self._lock = threading.Lock()
        self._login = login
        kwargs: dict[str, Any] = {"server_hostname": "receiver.test", "ready_timeout": 10.0}
        if implicit_tls:
            kwargs["ssl_context"] = tls_context
        elif tls_context is not None:
            kwargs["tls_context"] = tls_context
            kwargs["require_starttls"] = require_starttls
        if login is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_require_tls"] = True
        self._controller = _Controller(_SmtpHandler(self), hostname=LOCALHOST, port=0, **kwargs)
        self._running = False

    @property
    def host(self) -> str:
        return LOCALHOST

    @property
    def port(self) -> int:
        port: int = self._controller.port
        return port

    def refuse(self, address: str, reply: str) -> None:
        """Answer RCPT TO:<address> with *reply*, e.g. ``"550 5.1.1 no such user"``."""
        with self._lock:
            self._refusals[address.lower()] = reply

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and self._login is not None:
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if (user, password) == self._login:
                with self._lock:
                    self.logins.append(user)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def start(self) -> None:
        self._controller.start()
        self._running = True

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._controller.stop()


# -- HTTP ----------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One scripted answer: status, body (bytes, text, or JSON data), extra headers.

    *delay* holds the answer back that many seconds (in the server's thread;
    :meth:`HttpReceiver.stop` releases it early), to play a hanging endpoint.
    """

    status: int = 200
    body: bytes | str | Mapping[str, Any] | list[Any] = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode("utf-8"), "text/plain; charset=utf-8"
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8"), "application/json"


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str  # without the query string
    query: dict[str, str]  # last value of each parameter, decoded
    headers: dict[str, str]  # names lower-cased
    body: bytes
    raw_query: str = ""

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread
    block_on_close = True
    receiver: HttpReceiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        request = ReceivedRequest(
            method=self.command,
            path=parts.path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            raw_query=parts.query,
        )
        reply = receiver._record(request)
        if reply.delay > 0 and receiver._released.wait(reply.delay):
            self.close_connection = True
            return  # shutting down: drop the connection without an answer
        data, content_type = reply.encoded()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class HttpReceiver(_Running):
    """An HTTP server on 127.0.0.1 that records requests and answers from a script.

    Replies queued with :meth:`reply` are used in order, one per request;
    when none is queued, *default* answers (200 with ``{"errcode": 0,
    "errmsg": "ok"}``, which satisfies the group robots too).
    """

    def __init__(self, default: Reply | None = None, *, port: int = 0) -> None:
        """*port* 0 picks a free port; a given port brings an endpoint back where it was."""
        self.default = default or Reply(200, {"errcode": 0, "errmsg": "ok"})
        self.requests: list[ReceivedRequest] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._released = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = port

    def url(self, path: str = "/") -> str:
        return f"http://{LOCALHOST}:{self.port}{path}"

    def reply(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def _record(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            self._arrived.notify_all()
            return self._replies.popleft() if self._replies else self.default

    def wait_for(
        self, wanted: Callable[[ReceivedRequest], bool], timeout: float = 30.0
    ) -> ReceivedRequest:
        """The first recorded request *wanted* accepts, waiting for it to arrive (woken by
        each request, no polling); AssertionError after *timeout* seconds."""
        with self._arrived:
            found: list[ReceivedRequest] = []

            def seen() -> bool:
                found[:] = [r for r in self.requests if wanted(r)][:1]
                return bool(found)

            if not self._arrived.wait_for(seen, timeout):
                raise AssertionError(f"no such request within {timeout} s: {self.requests}")
            return found[0]

    def start(self) -> None:
        server = _Server((LOCALHOST, self.port), _Handler)
        server.receiver = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="http-receiver"
        )
        self._thread.start()

    def stop(self) -> None:
        """Shut down (releasing held replies); the port then refuses connections."""
        server, self._server = self._server, None
        if server is None:
            return
        self._released.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


# -- silence -------------------------------------------------------------------


class SilentServer(_Running):
    """A listening socket that never accepts: connections complete, then nothing is said."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self.port = 0

    @property
    def host(self) -> str:
        return LOCALHOST

    def url(self, path: str = "/") -> str:
        return f"http://{LOCALHOST}:{self.port}{path}"

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((LOCALHOST, 0))
        sock.listen(8)
        self._sock = sock
        self.port = sock.getsockname()[1]

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
