"""The console channel: prints each message; the default when nothing else is set up.

Useful on a developer's machine and in simulations.  It reaches every
recipient (its address is the person's id) and never fails: a stream that
cannot be written to is ignored rather than retried forever.
"""

from __future__ import annotations

import sys
from typing import TextIO

from notifications.channels._options import Options
from notifications.channels.base import Message, Recipient

__all__ = ["ConsoleChannel"]

STREAMS = ("stdout", "stderr")


class ConsoleChannel:
    name: str = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        # None: look sys.stdout up at each send, so redirection (and pytest's capsys) works.
        self._stream = stream

    @classmethod
    def from_settings(cls, options: Options) -> ConsoleChannel:
        which = options.choice("stream", STREAMS, "stdout")
        return cls(sys.stderr if which == "stderr" else None)

    def address(self, recipient: Recipient) -> str | None:
        return recipient.id

    def send(self, message: Message, address: str) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        who = message.recipient
        lines = [
            f"── {message.subject}",
            f"   to: {who.name} ({address})"
            + (f"   case: {message.case_id}" if message.case_id else "")
            + f"   kind: {message.kind}",
            *(f"   {line}" for line in message.body.splitlines()),
            "",
        ]
        try:
            stream.write("\n".join(lines))
            stream.flush()
        except (OSError, ValueError):  # closed or broken stream: nothing better to do
            pass

    def __repr__(self) -> str:
        return "ConsoleChannel()"
