"""Notification channels: one module per way of reaching a person.

    base.py       Recipient, Message, the Channel protocol, DeliveryFailed
    console.py    console    prints; the default when nothing is configured
    smtp.py       email      SMTP with smtplib (plain, STARTTLS or SSL)
    webhook.py    webhook    signed JSON POST to a person's or a group's URL
    wecom.py      wecom      企业微信 group robot
    dingtalk.py   dingtalk   钉钉 group robot (optionally signed)
    sms.py        sms        an HTTP SMS gateway, request body from a template

:func:`build_channels` turns the ``notifications.channels`` settings mapping
into channels by name; every problem in it is reported at once in one
:class:`~engine.errors.ConfigError`, each line naming its key, e.g.
``notifications.channels.email.host: required``.  The settings reference is
``docs/notifications.md``.

Channels never retry: :meth:`Channel.send` makes one attempt, bounded by the
channel's ``timeout``, and raises :class:`DeliveryFailed` — ``retryable``
telling the dispatcher whether trying again later can help.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.clock import Clock
from engine.errors import ConfigError
from engine.yamlkit import MapNode, Node, NodeReader, describe, did_you_mean, from_plain, is_null
from notifications.channels._options import Options
from notifications.channels.base import Channel, DeliveryFailed, Message, Recipient
from notifications.channels.console import ConsoleChannel
from notifications.channels.dingtalk import DingTalkChannel
from notifications.channels.sms import SmsChannel
from notifications.channels.smtp import EmailChannel
from notifications.channels.webhook import WebhookChannel
from notifications.channels.wecom import WeComChannel

__all__ = [
    "CHANNEL_NAMES",
    "Channel",
    "ConsoleChannel",
    "DeliveryFailed",
    "DingTalkChannel",
    "EmailChannel",
    "Message",
    "Recipient",
    "SmsChannel",
    "WeComChannel",
    "WebhookChannel",
    "build_channels",
    "read_channels",
]

SETTINGS_PATH = "notifications.channels"

_Builder = Callable[[Options, Clock | None], Channel | None]

_BUILDERS: dict[str, _Builder] = {
    "console": lambda options, clock: ConsoleChannel.from_settings(options),
    "email": lambda options, clock: EmailChannel.from_settings(options, clock=clock),
    "webhook": lambda options, clock: WebhookChannel.from_settings(options, clock=clock),
    "wecom": lambda options, clock: WeComChannel.from_settings(options),
    "dingtalk": lambda options, clock: DingTalkChannel.from_settings(options, clock=clock),
    "sms": lambda options, clock: SmsChannel.from_settings(options),
}

CHANNEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def build_channels(
    settings: Mapping[str, Any] | None, *, clock: Clock | None = None
) -> dict[str, Channel]:
    """The channels configured in *settings* (the ``notifications.channels`` mapping), by name.

    An empty or missing mapping gives just the console channel.  Otherwise
    exactly the channels listed are built (list ``console: {}`` to keep it).
    *clock* (default: the system clock) stamps mail ``Date`` headers and
    webhook/DingTalk timestamps.  Raises :class:`ConfigError` listing every
    problem, each naming its key; secrets are never echoed.
    """
    reader = NodeReader("<settings>")
    node = from_plain(settings) if settings is not None else None
    channels = read_channels(reader, node, clock=clock)
    if reader.diagnostics:
        problems = [str(d) for d in reader.diagnostics]
        keys = [d.path for d in reader.diagnostics]
        raise ConfigError("\n".join(problems), problems=problems, keys=keys)
    return channels


def read_channels(
    reader: NodeReader, node: Node | None, *, clock: Clock | None = None
) -> dict[str, Channel]:
    """The channels of the ``notifications.channels`` node; problems go to *reader*."""
    if is_null(node) or (isinstance(node, MapNode) and not node.entries):
        return {"console": ConsoleChannel()}
    assert node is not None
    if not isinstance(node, MapNode):
        reader.report(
            node,
            SETTINGS_PATH,
            f"expected a mapping of channel names to settings, got {describe(node)}",
        )
        return {}
    channels: dict[str, Channel] = {}
    for name, (key_node, value) in node.entries.items():
        path = f"{SETTINGS_PATH}.{name}"
        builder = _BUILDERS.get(name)
        if builder is None:
            reader.report(
                key_node,
                path,
                f"unknown channel {name!r}{did_you_mean(name, CHANNEL_NAMES)} "
                f"(known: {', '.join(CHANNEL_NAMES)})",
            )
            continue
        options = Options(path, value, reader)
        channel = builder(options, clock)
        options.check_unknown()
        if channel is not None:
            channels[name] = channel
    return channels
