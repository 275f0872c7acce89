"""One HTTP request with httpx, every failure translated to :class:`DeliveryFailed`.

The edge where httpx errors stop: a timeout or a network error is retryable,
so is a 408, a 429 or a 5xx; any other non-2xx status is not (the request
itself is wrong, and sending it again cannot help).  Redirects are not
followed: a webhook that moved must be reconfigured.  Only the first
:data:`MAX_REPLY` bytes of a reply are read.  The TLS context (the CA
bundle, loaded once) is shared by every request: loading it per request
cost ~150 ms of CPU, more than everything else a send does.
"""

from __future__ import annotations

import functools
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from notifications.channels.base import DeliveryFailed

__all__ = ["MAX_REPLY", "USER_AGENT", "Reply", "redact", "request"]

MAX_REPLY = 64 * 1024
USER_AGENT = "gengbao-notifications/1"
RETRYABLE_STATUS = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        """The reply as JSON, or ``None`` when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def excerpt(self, limit: int = 200) -> str:
        text = self.body.decode("utf-8", "replace").strip()
        return text if len(text) <= limit else text[:limit] + "…"


def request(
    what: str,
    method: str,
    url: str,
    *,
    content: bytes,
    headers: Mapping[str, str],
    timeout: float,
    transport: httpx.BaseTransport | None = None,
) -> Reply:
    """Send one request; a 2xx reply is returned, anything else raises DeliveryFailed.

    *what* names the channel and target in failure reasons (never a secret URL).
    """
    all_headers = {"User-Agent": USER_AGENT, **headers}
    try:
        with (
            httpx.Client(
                timeout=timeout, transport=transport, follow_redirects=False, verify=_tls()
            ) as client,
            client.stream(method, url, content=content, headers=all_headers) as resp,
        ):
            body = _read_capped(resp)
            status = resp.status_code
    except httpx.TimeoutException as exc:
        raise DeliveryFailed(
            f"{what}: no answer within {timeout:g} s ({type(exc).__name__})", retryable=True
        ) from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise DeliveryFailed(f"{what}: unusable URL: {exc}", retryable=False) from None
    except httpx.TransportError as exc:
        raise DeliveryFailed(
            f"{what}: network error: {type(exc).__name__}: {exc}", retryable=True
        ) from None
    except httpx.HTTPError as exc:  # pragma: no cover - every other httpx error, defensively
        raise DeliveryFailed(f"{what}: {type(exc).__name__}: {exc}", retryable=True) from None
    reply = Reply(status, body)
    if 200 <= status < 300:
        return reply
    retryable = status in RETRYABLE_STATUS or status >= 500
    detail = reply.excerpt()
    raise DeliveryFailed(
        f"{what}: HTTP {status}" + (f": {detail}" if detail else ""), retryable=retryable
    )


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default verification (certifi, or $SSL_CERT_FILE / $SSL_CERT_DIR), built once."""
    return httpx.create_ssl_context()


def _read_capped(resp: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_REPLY:
            break
    return b"".join(chunks)[:MAX_REPLY]


def redact(url: str) -> str:
    """*url* without its query string (robot URLs carry their key there)."""
    return url.split("?", 1)[0]
