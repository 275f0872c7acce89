"""Group robots (企业微信, 钉钉): a JSON POST answered by ``{"errcode": 0, ...}``.

Both vendors answer HTTP 200 even when they refuse a message; the verdict is
``errcode``.  A non-zero code is a failure, retryable only when it says
"busy" or "too fast" (the codes passed in *retryable_codes*).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import httpx

from notifications.channels import _http
from notifications.channels.base import DeliveryFailed

__all__ = ["TITLE_LIMIT", "post", "title", "truncate_utf8"]

TITLE_LIMIT = 64
"""Characters of a robot message's title line: a preview, never the whole subject."""


def post(
    what: str,
    url: str,
    payload: dict[str, Any],
    *,
    timeout: float,
    retryable_codes: Collection[int],
    transport: httpx.BaseTransport | None = None,
) -> None:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    reply = _http.request(
        what,
        "POST",
        url,
        content=body,
        headers={"Content-Type": "application/json; charset=utf-8"},
        timeout=timeout,
        transport=transport,
    )
    answer = reply.json()
    if not isinstance(answer, dict) or "errcode" not in answer:
        raise DeliveryFailed(
            f"{what}: unexpected reply (no errcode): {reply.excerpt()}", retryable=True
        )
    code = answer["errcode"]
    if code == 0:
        return
    errmsg = str(answer.get("errmsg", ""))
    raise DeliveryFailed(
        f"{what}: errcode {code}: {errmsg}".rstrip(": "),
        retryable=code in retryable_codes,
    )


def title(subject: str, limit: int = TITLE_LIMIT) -> str:
    """*subject* on one line, cut to *limit* characters ending in "…" when longer."""
    text = " ".join(subject.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def truncate_utf8(text: str, limit: int, ellipsis: str = "…") -> str:
    """*text* cut to at most *limit* UTF-8 bytes, ending in *ellipsis* when cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    room = limit - len(ellipsis.encode("utf-8"))
    return data[:room].decode("utf-8", "ignore") + ellipsis
