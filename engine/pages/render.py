"""The pages' templates and what they share: local times, spans of time, the error page.

Templates are files of this package, rendered with autoescaping on (a case field
holding ``<script>`` is shown as text) and ``StrictUndefined`` (a name a template
misspells is an error in the tests, not an empty string on a phone).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

__all__ = ["error_page", "local_time", "page", "span_left"]

_env = Environment(
    loader=PackageLoader("engine.pages", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

STATUS_TITLES = {
    400: "请求有误",
    401: "请先登录",
    403: "无权操作",
    404: "未找到",
    405: "不支持的操作",
    409: "操作冲突",
    413: "提交内容过大",
    422: "填写有误",
    429: "尝试过于频繁",
    500: "系统内部错误",
    503: "系统繁忙",
}


def local_time(moment: dt.datetime | str | None, timezone: str) -> str:
    """``2026-09-18 10:00`` in *timezone* (storage is UTC); '' for None."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def span_left(seconds: int | None) -> str:
    """``剩余 2小时30分钟`` / ``超期 1天3小时`` / '' (no deadline)."""
    if seconds is None:
        return ""
    label = "剩余" if seconds >= 0 else "超期"
    minutes = abs(seconds) // 60
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        text = f"{days}天{hours}小时" if hours else f"{days}天"
    elif hours:
        text = f"{hours}小时{mins}分钟" if mins else f"{hours}小时"
    else:
        text = f"{mins}分钟"
    return f"{label} {text}"


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """*template* rendered with *context* and the signed-in person (if any)."""
    context.setdefault("signed_in", getattr(request.state, "ui_session", None))
    context.setdefault("title", "耕保")
    html = _env.get_template(template).render(**context)
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    )
    return response


def error_page(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """The friendly page of an error: its status, a title in Chinese, what to do."""
    response = page(
        request,
        "error.html",
        status,
        title=STATUS_TITLES.get(status, "出错了"),
        status=status,
        message=message,
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
