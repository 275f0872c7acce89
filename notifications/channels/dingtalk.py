"""The 钉钉 (DingTalk) group-robot channel.

Like WeCom's, a DingTalk custom robot
(``https://oapi.dingtalk.com/robot/send?access_token=...``) posts into one
group, so every recipient has the same address: the configured URL without
its secret query, as a label (the database never holds the token).

With a ``secret`` (the robot's "加签" setting, the ``SEC...`` string) each
request is signed: ``timestamp`` is the time in milliseconds, ``sign`` is
``base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}"))``, and both
are appended to the URL's query (URL-encoded).  DingTalk refuses a timestamp
more than an hour off, so the server's clock must be right.  A robot secured
by keywords ("自定义关键词") only accepts messages containing one: put the
keyword in the templates' subjects.

The message is ``{"msgtype": "text", "text": {"content": subject + "\\n" + body}}``
(or ``markdown`` with ``title`` and ``text``).  The title line is cut to
64 characters and the content to 20,000 bytes, each ending in "…" when cut: a
long field value shortens the message, it never makes the robot refuse it.
DingTalk answers HTTP 200 with
``{"errcode": 0, "errmsg": "ok"}``; errcode -1 (busy) and 130101 (more than
20 messages a minute) are retryable, any other non-zero code — 310000 for a
bad signature, keyword or IP address, 300001 for a bad token — is not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import httpx

from engine.clock import Clock, SystemClock
from notifications.channels import _http, _robot
from notifications.channels._options import DEFAULT_TIMEOUT, Options
from notifications.channels.base import Message, Recipient

__all__ = ["RETRYABLE_ERRCODES", "DingTalkChannel", "sign"]

RETRYABLE_ERRCODES = frozenset({-1, 130101})
MSGTYPES = ("text", "markdown")
CONTENT_LIMIT = 20_000
"""Bytes of content gengbao sends to a DingTalk robot; a longer message is cut with "…"."""


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature for *timestamp_ms*, base64 (not yet URL-encoded)."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode("utf-8"), to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class DingTalkChannel:
    name: str = "dingtalk"

    def __init__(
        self,
        *,
        url: str,
        secret: str | None = None,
        msgtype: str = "text",
        timeout: float = DEFAULT_TIMEOUT,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if msgtype not in MSGTYPES:
            raise ValueError(f"msgtype must be one of {', '.join(MSGTYPES)}, not {msgtype!r}")
        self.url = url
        self._secret = secret
        self.msgtype = msgtype
        self.timeout = timeout
        self._clock: Clock = clock or SystemClock()
        self._transport = transport

    @classmethod
    def from_settings(
        cls, options: Options, *, clock: Clock | None = None
    ) -> DingTalkChannel | None:
        url = options.url("url", required=True, secret=True)
        secret = options.text("secret", secret=True)
        msgtype = options.choice("msgtype", MSGTYPES, "text")
        timeout = options.timeout()
        if url is None:
            return None
        return cls(url=url, secret=secret, msgtype=msgtype, timeout=timeout, clock=clock)

    def address(self, recipient: Recipient) -> str | None:
        # The robot URL carries its key: store and show only the URL without it.
        return _http.redact(self.url)

    def payload(self, message: Message) -> dict[str, Any]:
        subject = _robot.title(message.subject)
        if self.msgtype == "markdown":
            text = _robot.truncate_utf8(f"#### {subject}\n\n{message.body}", CONTENT_LIMIT)
            return {"msgtype": "markdown", "markdown": {"title": subject, "text": text}}
        content = _robot.truncate_utf8(f"{subject}\n{message.body}", CONTENT_LIMIT)
        return {"msgtype": "text", "text": {"content": content}}

    def signed_url(self, address: str) -> str:
        """*address* with ``timestamp`` and ``sign`` appended when a secret is set."""
        if self._secret is None:
            return address
        timestamp = int(self._clock.now().timestamp() * 1000)
        url = httpx.URL(address).copy_merge_params(
            {"timestamp": str(timestamp), "sign": sign(self._secret, timestamp)}
        )
        return str(url)

    def send(self, message: Message, address: str) -> None:
        _robot.post(
            f"dingtalk robot {address}",
            self.signed_url(self.url),
            self.payload(message),
            timeout=self.timeout,
            retryable_codes=RETRYABLE_ERRCODES,
            transport=self._transport,
        )

    def __repr__(self) -> str:
        signed = self._secret is not None
        return f"DingTalkChannel({_http.redact(self.url)}, signed={signed})"
