"""The channel seam: one interface, one module per way of reaching a person.

A channel knows which of a recipient's addresses it uses and how to deliver
one rendered message there.  A failure raises :class:`DeliveryFailed`;
``retryable=False`` means retrying cannot help (a rejected address), so the
dispatcher marks the delivery dead at once instead of backing off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.errors import DeliveryFailed

__all__ = ["Channel", "DeliveryFailed", "Message", "Recipient"]


@dataclass(frozen=True)
class Recipient:
    id: str
    name: str
    email: str | None = None
    phone: str | None = None
    webhook: str | None = None


@dataclass(frozen=True)
class Message:
    """One rendered notification for one recipient on one channel."""

    subject: str
    body: str
    short: str  # the SMS / group-robot form, at most 70 characters
    recipient: Recipient
    dedupe_key: str  # stable across retries: receivers drop repeats by it
    case_id: str | None = None
    kind: str = "transition"
    extra: dict[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    name: str

    def address(self, recipient: Recipient) -> str | None:
        """Where this channel reaches *recipient*, or None if it cannot."""
        ...

    def send(self, message: Message, address: str) -> None:
        """Deliver, or raise :class:`DeliveryFailed`. Every network call has a timeout."""
        ...
