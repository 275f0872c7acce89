"""The generic webhook channel: a signed JSON POST to a person's (or a group's) URL.

The body is one JSON object::

    {"dedupe_key": "...", "case": "...", "kind": "...", "subject": "...",
     "body": "...", "short": "...", "recipient": {"id": "...", "name": "..."}}

sent as UTF-8 with the headers ``X-Gengbao-Dedupe-Key`` and
``Idempotency-Key`` (both the dedupe key, so a receiver can drop repeats) and,
when a ``secret`` is configured, ``X-Gengbao-Timestamp`` (Unix seconds) and
``X-Gengbao-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`` — the
same scheme as GitHub's ``X-Hub-Signature-256``.  The address is the
recipient's ``webhook`` URL from the grid file, or the configured ``url``
(one endpoint for everybody) when there is one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import quote

import httpx

from engine.clock import Clock, SystemClock
from notifications.channels import _http
from notifications.channels._options import DEFAULT_TIMEOUT, Options
from notifications.channels.base import Message, Recipient

__all__ = ["WebhookChannel", "payload", "signature"]


def payload(message: Message) -> dict[str, Any]:
    return {
        "dedupe_key": message.dedupe_key,
        "case": message.case_id,
        "kind": message.kind,
        "subject": message.subject,
        "body": message.body,
        "short": message.short,
        "recipient": {"id": message.recipient.id, "name": message.recipient.name},
    }


def signature(secret: str, body: bytes) -> str:
    """The ``X-Gengbao-Signature`` value of *body*."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookChannel:
    name: str = "webhook"

    def __init__(
        self,
        *,
        url: str | None = None,
        secret: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self._secret = secret
        self.timeout = timeout
        self._clock: Clock = clock or SystemClock()
        self._transport = transport

    @classmethod
    def from_settings(cls, options: Options, *, clock: Clock | None = None) -> WebhookChannel:
        return cls(
            url=options.url("url"),
            secret=options.text("secret", secret=True),
            timeout=options.timeout(),
            clock=clock,
        )

    def address(self, recipient: Recipient) -> str | None:
        return self.url or recipient.webhook or None

    def send(self, message: Message, address: str) -> None:
        body = json.dumps(payload(message), ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Gengbao-Dedupe-Key": _ascii_header(message.dedupe_key),
            "Idempotency-Key": _ascii_header(message.dedupe_key),
        }
        if self._secret is not None:
            headers["X-Gengbao-Timestamp"] = str(int(self._clock.now().timestamp()))
            headers["X-Gengbao-Signature"] = signature(self._secret, body)
        _http.request(
            f"webhook {_http.redact(address)}",
            "POST",
            address,
            content=body,
            headers=headers,
            timeout=self.timeout,
            transport=self._transport,
        )

    def __repr__(self) -> str:
        where = _http.redact(self.url) if self.url else "per-recipient URLs"
        return f"WebhookChannel({where}, signed={self._secret is not None})"


def _ascii_header(value: str) -> str:
    """Header values must be printable ASCII: anything else is percent-escaped (UTF-8)."""
    if value.isascii() and value.isprintable():
        return value
    return quote(value, safe=_PRINTABLE)


_PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
