"""The 企业微信 (WeCom) group-robot channel.

A group robot's webhook URL
(``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...``) posts into one
group chat, so every recipient has the same address — the URL without its
secret query, as a label (the database never holds the key); the dispatcher,
which dedupes deliveries by (notification, channel, address), then posts a
notification into the group once, however many of its recipients are there.

The message is ``{"msgtype": "text", "text": {"content": subject + "\\n" + body}}``
(or ``markdown``, subject in bold), cut to WeCom's limits of 2048 bytes (text)
and 4096 bytes (markdown); the subject line is cut to 64 characters first, so a
long subject never crowds out the body.  WeCom answers HTTP 200 with
``{"errcode": 0, "errmsg": "ok"}``; errcode -1 (system busy) and 45009
(frequency limit: a robot may send 20 messages a minute) are retryable, any
other non-zero code is not.
"""

from __future__ import annotations

from typing import Any

import httpx

from notifications.channels import _http, _robot
from notifications.channels._options import DEFAULT_TIMEOUT, Options
from notifications.channels.base import Message, Recipient

__all__ = ["RETRYABLE_ERRCODES", "WeComChannel"]

RETRYABLE_ERRCODES = frozenset({-1, 45009})
MSGTYPES = ("text", "markdown")
LIMITS = {"text": 2048, "markdown": 4096}


class WeComChannel:
    name: str = "wecom"

    def __init__(
        self,
        *,
        url: str,
        msgtype: str = "text",
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if msgtype not in MSGTYPES:
            raise ValueError(f"msgtype must be one of {', '.join(MSGTYPES)}, not {msgtype!r}")
        self.url = url
        self.msgtype = msgtype
        self.timeout = timeout
        self._transport = transport

    @classmethod
    def from_settings(cls, options: Options) -> WeComChannel | None:
        url = options.url("url", required=True, secret=True)
        msgtype = options.choice("msgtype", MSGTYPES, "text")
        timeout = options.timeout()
        return None if url is None else cls(url=url, msgtype=msgtype, timeout=timeout)

    def address(self, recipient: Recipient) -> str | None:
        # The robot URL carries its key: store and show only the URL without it.
        return _http.redact(self.url)

    def payload(self, message: Message) -> dict[str, Any]:
        subject = _robot.title(message.subject)
        if self.msgtype == "markdown":
            content = f"**{subject}**\n{message.body}"
        else:
            content = f"{subject}\n{message.body}"
        content = _robot.truncate_utf8(content, LIMITS[self.msgtype])
        return {"msgtype": self.msgtype, self.msgtype: {"content": content}}

    def send(self, message: Message, address: str) -> None:
        _robot.post(
            f"wecom robot {address}",
            self.url,
            self.payload(message),
            timeout=self.timeout,
            retryable_codes=RETRYABLE_ERRCODES,
            transport=self._transport,
        )

    def __repr__(self) -> str:
        return f"WeComChannel({_http.redact(self.url)}, msgtype={self.msgtype!r})"
