"""The email channel: one SMTP conversation per message, with smtplib.

(Named ``smtp`` so it does not shadow the standard library's ``email``.)

Messages are :class:`email.message.EmailMessage` objects, which encode Chinese
subjects, names and bodies as UTF-8.  ``Message-ID`` is derived from the
dedupe key, and ``X-Gengbao-Dedupe-Key`` carries the key itself, so a mail
system or a mailbox filter can drop a repeat sent by a retry.

Failures: a connection problem, a timeout, a 4xx reply and a configuration
problem on our side (bad login, sender refused, STARTTLS unsupported) are
retryable — they are fixed by waiting or by an operator, after which the same
message goes through.  A 5xx refusal of the recipient, or of the message
itself, is not: sending it again cannot succeed.
"""

from __future__ import annotations

import contextlib
import hashlib
import smtplib
import ssl
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from engine.clock import Clock, SystemClock
from notifications.channels._options import DEFAULT_TIMEOUT, Options
from notifications.channels.base import DeliveryFailed, Message, Recipient

__all__ = ["SECURITY", "EmailChannel", "message_id"]

SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}


def message_id(dedupe_key: str, domain: str) -> str:
    """The ``Message-ID`` of every send of the message with *dedupe_key*."""
    digest = hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{domain}>"


class EmailChannel:
    name: str = "email"

    def __init__(
        self,
        *,
        host: str,
        sender: str,
        port: int | None = None,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        if security not in SECURITY:
            raise ValueError(f"security must be one of {', '.join(SECURITY)}, not {security!r}")
        if (username is None) != (password is None):
            raise ValueError("username and password go together")
        self.host = host
        self.port = port if port is not None else DEFAULT_PORTS[security]
        self.security = security
        self.username = username
        self._password = password
        self.timeout = timeout
        self.local_hostname = local_hostname
        self._ssl_context = ssl_context
        self._clock: Clock = clock or SystemClock()
        self.sender, self.envelope_from = _parse_sender(sender)
        self.domain = self.envelope_from.rpartition("@")[2] or "gengbao"

    @classmethod
    def from_settings(cls, options: Options, *, clock: Clock | None = None) -> EmailChannel | None:
        problems = len(options.problems)
        host = options.text("host", required=True)
        security = options.choice("security", SECURITY, "starttls")
        port = options.port("port")
        username = options.text("username")
        password = options.text("password", secret=True)
        sender = options.text("sender", required=True)
        ca_file = options.text("ca_file")
        local_hostname = options.text("local_hostname")
        timeout = options.timeout()
        if options.has("username") != options.has("password"):
            missing = "password" if options.has("username") else "username"
            options.problem(missing, "required when the other of username/password is set")
        if password is not None and not password.isascii():
            options.problem("password", "must be ASCII (smtplib sends only ASCII credentials)")
        if username is not None and security == "none":
            options.problem(
                "security", "'none' would send the password in clear text; use starttls or ssl"
            )
        if sender is not None:
            try:
                _parse_sender(sender)
            except ValueError as exc:
                options.problem("sender", str(exc))
        context = None
        if ca_file is not None:
            try:
                context = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                options.problem("ca_file", f"cannot load CA certificates: {exc}")
        if len(options.problems) > problems or host is None or sender is None:
            return None
        return cls(
            host=host,
            port=port,
            security=security,
            username=username,
            password=password,
            sender=sender,
            timeout=timeout,
            ssl_context=context,
            local_hostname=local_hostname,
            clock=clock,
        )

    def address(self, recipient: Recipient) -> str | None:
        return recipient.email or None

    def compose(self, message: Message, address: str) -> EmailMessage:
        """The email for *message* to *address* (public so it can be inspected)."""
        mail = EmailMessage()
        try:
            mail["To"] = Address(display_name=_one_line(message.recipient.name), addr_spec=address)
        except (ValueError, IndexError, HeaderParseError) as exc:
            raise DeliveryFailed(
                f"email: invalid address {address!r}: {exc}", retryable=False
            ) from None
        mail["From"] = self.sender
        mail["Subject"] = _one_line(message.subject)
        mail["Date"] = format_datetime(self._clock.now())
        mail["Message-ID"] = message_id(message.dedupe_key, self.domain)
        mail["X-Gengbao-Dedupe-Key"] = _one_line(message.dedupe_key)
        if message.case_id:
            mail["X-Gengbao-Case"] = _one_line(message.case_id)
        mail["X-Gengbao-Kind"] = _one_line(message.kind)
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
        mail.set_content(message.body, charset="utf-8")
        return mail

    def send(self, message: Message, address: str) -> None:
        mail = self.compose(message, address)
        where = f"email via {self.host}:{self.port}"
        try:
            self._deliver(mail, address)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (0, b""))
            raise DeliveryFailed(
                f"{where}: recipient {address} refused: {code} {_decode(text)}",
                retryable=not 500 <= code < 600,
            ) from None
        except smtplib.SMTPDataError as exc:
            raise DeliveryFailed(
                f"{where}: message refused: {exc.smtp_code} {_decode(exc.smtp_error)}",
                retryable=not 500 <= exc.smtp_code < 600,
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryFailed(
                f"{where}: login refused (check username and password): "
                f"{exc.smtp_code} {_decode(exc.smtp_error)}",
                retryable=True,
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(
                f"{where}: {type(exc).__name__}: {exc.smtp_code} {_decode(exc.smtp_error)}",
                retryable=True,
            ) from None
        except TimeoutError:
            raise DeliveryFailed(
                f"{where}: no answer within {self.timeout:g} s", retryable=True
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"{where}: {type(exc).__name__}: {exc}", retryable=True) from None

    def _deliver(self, mail: EmailMessage, address: str) -> None:
        smtp = self._connect()  # smtplib closes the socket itself if this fails
        sent = False
        try:
            if self.security == "starttls":
                smtp.starttls(context=self._context())
            if self.username is not None and self._password is not None:
                smtp.login(self.username, self._password)
            smtp.send_message(mail, from_addr=self.envelope_from, to_addrs=[address])
            sent = True
        finally:
            if sent:  # accepted: a failing QUIT changes nothing
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.quit()
            smtp.close()  # after a failure, no QUIT: the server may be the one hanging

    def _connect(self) -> smtplib.SMTP:
        # The host is given to the constructor (not to connect()): STARTTLS checks it.
        if self.security == "ssl":
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=self._context(),
            )
        return smtplib.SMTP(
            self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
        )

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def __repr__(self) -> str:
        return f"EmailChannel(host={self.host!r}, port={self.port}, security={self.security!r})"


def _parse_sender(sender: str) -> tuple[str, str]:
    """(From header text, envelope address) of *sender*, e.g. ``耕保通知 <noreply@example.org>``."""
    probe = EmailMessage()
    try:
        probe["From"] = sender
        addresses = probe["From"].addresses
    except (ValueError, IndexError, HeaderParseError) as exc:
        raise ValueError(f"not an email address: {sender!r} ({exc})") from None
    if len(addresses) != 1 or "@" not in addresses[0].addr_spec or probe["From"].defects:
        raise ValueError(
            f"expected one address like '耕保通知 <noreply@example.org>', got {sender!r}"
        )
    return sender, addresses[0].addr_spec


def _one_line(text: str) -> str:
    return " ".join(text.split()) if ("\n" in text or "\r" in text) else text


def _decode(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else text
