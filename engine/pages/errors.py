"""Errors as duty staff see them: a page in Chinese with the status code, never a traceback.

:func:`install` registers the handlers of the pages' application: the engine's
errors get the status the HTTP API gives them (the API's one mapping, handed to
:func:`~engine.pages.app.create_pages`) and a message of :func:`friendly`; routing
errors keep their status; anything unexpected is logged with its traceback and shown as a 500 page
that says nothing of the internals.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException

from engine import errors as e
from engine.pages.render import error_page
from engine.pages.session import status_of

__all__ = ["friendly", "install"]

log = logging.getLogger(__name__)

_MESSAGES: tuple[tuple[type[e.GengbaoError], str], ...] = (
    (e.UnknownCase, "没有找到这个案件，或者它不在您所在网格的范围内。"),
    (e.NotFound, "没有找到您要的内容。"),
    (
        e.CsrfRefused,
        "页面的安全校验未通过（页面已过期，或表单来自别处），没有进行任何操作。请重新打开页面再提交。",
    ),
    (e.NotPermitted, "您的角色不能进行这项操作。"),
    (e.TriggerNotAllowed, "案件当前所处环节不能进行这项操作（可能已被他人办理），请刷新页面。"),
    (e.VersionConflict, "案件在您填写期间已被他人办理，请刷新页面后再试。"),
    (e.GuardFailed, "填写的内容不满足这项操作的条件。"),
    (e.CountersignPending, "会签尚未完成，暂不能进行这项操作。"),
    (e.TransferPending, "案件正在移送，等待接收单位接收或退回。"),
    (e.TransferNotPending, "这次移送已经处理过了。"),
    (e.AlreadyAssigned, "案件已由他人签收。"),
    (e.PartyNotPending, "这一方已经签署过了。"),
    (e.NoCountersign, "案件当前没有待会签事项。"),
    (e.SupervisionRefused, "这条督办不能再回复了。"),
    (e.Unauthenticated, "请先登录。"),
    (e.StorageUnavailable, "系统繁忙，请稍后再试。"),
)


def friendly(exc: e.GengbaoError) -> str:
    """What the page says about *exc* (its message in Chinese)."""
    for cls, text in _MESSAGES:
        if isinstance(exc, cls):
            return text
    if isinstance(exc, e.EventRejected):
        return f"操作未被接受：{exc.message}"
    return "系统内部错误，已记录日志，请稍后再试或联系管理员。"


async def _gengbao(request: Request, exc: Exception) -> HTMLResponse:
    assert isinstance(exc, e.GengbaoError)
    status = status_of(request, exc)
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc, exc_info=exc)
    return error_page(request, status, friendly(exc))


async def _http(request: Request, exc: Exception) -> HTMLResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    text = {404: "没有这个页面。", 405: "不支持这种访问方式。", 413: "提交的内容过大。"}
    return error_page(request, status, text.get(status, "请求有误。"))


async def _validation(request: Request, exc: Exception) -> HTMLResponse:
    return error_page(request, 404, "没有这个页面（地址有误）。")


async def _internal(request: Request, exc: Exception) -> HTMLResponse:
    log.error("%s %s: unexpected error", request.method, request.url.path, exc_info=exc)
    return error_page(request, 500, "系统内部错误，已记录日志，请稍后再试或联系管理员。")


def install(pages: FastAPI) -> None:
    pages.add_exception_handler(e.GengbaoError, _gengbao)
    pages.add_exception_handler(HTTPException, _http)
    pages.add_exception_handler(RequestValidationError, _validation)
    pages.add_exception_handler(Exception, _internal)
