"""The SMS channel: an HTTP request to a gateway, its body written by a template.

SMS gateways all differ, so the request is configured: ``url``, ``method``,
``headers``, ``content_type`` and a ``body`` template (and the ``url`` may be a
template too, for gateways that take GET parameters).  Templates are Jinja2,
compiled in an :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` with
:class:`~jinja2.StrictUndefined`, and see only three names: ``phone`` (the
recipient's number), ``text`` (the message's ``short`` form) and
``dedupe_key``.  Each template is compiled and rendered once with sample
values when the channel is built, so an unknown name or an escape attempt is
a :class:`~engine.errors.ConfigError` at start-up, not a failed delivery.

``text`` is at most :data:`SMS_LIMIT` (70) characters — one SMS segment of
Chinese text; a longer ``short`` is cut to 69 characters plus "…", with a
warning in the log.  A 2xx reply is success, unless ``success_field`` is set:
then the reply must be JSON whose field (a dotted path such as
``result.code``) equals ``success_value``.  A reply that says otherwise is a
retryable failure (whether the gateway would accept it later is unknown).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import httpx
import jinja2
from jinja2 import meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.errors import DeliveryFailed, TemplateProblem
from notifications.channels import _http
from notifications.channels._options import DEFAULT_TIMEOUT, Options
from notifications.channels.base import Message, Recipient

__all__ = ["NAMES", "SMS_LIMIT", "SmsChannel", "TemplateProblem", "fit"]

log = logging.getLogger(__name__)

SMS_LIMIT = 70
NAMES = frozenset({"phone", "text", "dedupe_key"})
METHODS = ("POST", "PUT", "GET")
SAMPLE = {"phone": "13800000000", "text": '耕保测试短信 "quote" <tag> & 100%', "dedupe_key": "k:1"}
MAX_RENDERED = 16_000


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, with ``*`` capped and ``**`` refused so no template builds a huge string."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise SecurityError("'**' is not allowed in templates")
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, (str, list)) and isinstance(count, int) and len(seq) * count > 1000:
                raise SecurityError("'*' would build a string that is too long")
        return super().call_binop(context, operator, left, right)


_ENV = _Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


def compile_template(source: str) -> jinja2.Template:
    """Compile *source* and try it on sample values; raise :class:`TemplateProblem`."""
    try:
        template = _ENV.from_string(source)
        stray = sorted(meta.find_undeclared_variables(_ENV.parse(source)) - NAMES)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"line {exc.lineno}: {exc.message}") from exc
    if stray:
        raise TemplateProblem(
            f"unknown name(s) {', '.join(stray)}; available: {', '.join(sorted(NAMES))}"
        )
    _render(template, SAMPLE)
    return template


def _render(template: jinja2.Template, values: Mapping[str, str]) -> str:
    try:
        out = template.render(**values)
    except SecurityError as exc:
        raise TemplateProblem(f"refused by the sandbox: {exc}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateProblem(f"{type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # a filter given the wrong type, a division by zero, ...
        raise TemplateProblem(f"{type(exc).__name__}: {exc}") from exc
    if len(out) > MAX_RENDERED:
        raise TemplateProblem(f"renders to {len(out)} characters (at most {MAX_RENDERED})")
    return out


def check_url(template: jinja2.Template) -> None:
    if not _render(template, SAMPLE).startswith(("http://", "https://")):
        raise TemplateProblem("does not render to an http:// or https:// URL", key="url")


def check_body(template: jinja2.Template, content_type: str) -> None:
    sample = _render(template, SAMPLE)
    if sample.strip() and "json" in content_type.lower():
        try:
            json.loads(sample)
        except ValueError:
            raise TemplateProblem(
                "does not render to JSON for a text with quotes in it "
                '(write {{ text | tojson }}, not "{{ text }}")',
                key="body",
            ) from None


def fit(text: str, limit: int = SMS_LIMIT) -> str:
    """*text* on one line, cut to *limit* characters with "…" when longer."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SmsChannel:
    name: str = "sms"

    def __init__(
        self,
        *,
        url: str,
        body: str = "",
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json; charset=utf-8",
        success_field: str | None = None,
        success_value: str | int | float | bool | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Raises :class:`TemplateProblem` for a bad *url* or *body* template."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        self._url = compile_template(url)
        self._body = compile_template(body)
        self.method = method
        self.headers = dict(headers or {})
        self.content_type = content_type
        self.success_field = success_field
        self.success_value = success_value
        self.timeout = timeout
        self._transport = transport
        check_url(self._url)
        check_body(self._body, content_type)

    @classmethod
    def from_settings(cls, options: Options) -> SmsChannel | None:
        start = len(options.problems)
        url = options.text("url", required=True, secret=True)
        body = options.text("body", default="", empty=True)
        method = options.choice("method", METHODS, "POST")
        headers = options.text_mapping("headers", secret=True)
        content_type = options.text("content_type", default="application/json; charset=utf-8")
        success_field = options.text("success_field")
        success_value = options.scalar("success_value")
        timeout = options.timeout()
        if success_value is not None and success_field is None:
            options.problem("success_value", "needs success_field")
        ct = content_type or ""
        checks = (("url", url, check_url), ("body", body, lambda t: check_body(t, ct)))
        for key, source, check in checks:
            if source is not None:
                try:
                    check(compile_template(source))
                except TemplateProblem as exc:
                    options.problem(key, f"template: {exc}")
        if url is None or len(options.problems) > start:
            return None
        try:
            return cls(
                url=url,
                body=body or "",
                method=method,
                headers=headers,
                content_type=content_type or "application/json; charset=utf-8",
                success_field=success_field,
                success_value=success_value,
                timeout=timeout,
            )
        except TemplateProblem as exc:  # pragma: no cover - every check ran above
            options.problem(exc.key or "body", f"template: {exc}")
            return None

    def address(self, recipient: Recipient) -> str | None:
        return recipient.phone or None

    def render(self, message: Message, address: str) -> tuple[str, bytes]:
        """The (url, body) of the request for *message* to phone *address*."""
        text = fit(message.short)
        if text != " ".join(message.short.split()):
            log.warning(
                "sms: short text of %s cut to %d characters (was %d)",
                message.dedupe_key,
                SMS_LIMIT,
                len(message.short),
            )
        values = {"phone": address, "text": text, "dedupe_key": message.dedupe_key}
        try:
            url = _render(self._url, values)
            body = _render(self._body, values)
        except TemplateProblem as exc:
            raise DeliveryFailed(f"sms: gateway template: {exc}", retryable=False) from exc
        return url, body.encode("utf-8")

    def send(self, message: Message, address: str) -> None:
        url, body = self.render(message, address)
        headers = {**self.headers}
        if body:
            headers.setdefault("Content-Type", self.content_type)
        what = f"sms gateway {_http.redact(url)}"
        reply = _http.request(
            what,
            self.method,
            url,
            content=body,
            headers=headers,
            timeout=self.timeout,
            transport=self._transport,
        )
        if self.success_field is None:
            return
        found = _field(reply.json(), self.success_field)
        if found is _MISSING or not _same(found, self.success_value):
            shown = "missing" if found is _MISSING else repr(found)
            raise DeliveryFailed(
                f"{what}: {self.success_field} is {shown}, not {self.success_value!r}: "
                f"{reply.excerpt()}",
                retryable=True,
            )

    def __repr__(self) -> str:
        return f"SmsChannel({self.method})"


_MISSING = object()


def _field(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def _same(found: Any, expected: Any) -> bool:
    """Equal as numbers, else equal as text (a gateway may answer ``"0"`` for ``0``)."""
    if isinstance(found, (dict, list)):
        return False
    if _is_number(found) and _is_number(expected):
        return bool(found == expected)
    return _text(found) == _text(expected)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
