"""The one place where errors become HTTP responses.

Every error leaves as ``{"error": CODE, "message": TEXT, "details": {...}}``.
:data:`STATUS` maps each class of the engine's exceptions tree to its status;
the handler looks an exception's classes up nearest first, so a subclass
added later falls back to its parent's status until it is given its own
(``tests/test_api_errors.py`` checks that every class has one).  Request
problems caught by FastAPI (bad JSON, a missing field, a query parameter out
of range) are 422 ``invalid_request`` with ``details.fields`` naming each
field; routing problems keep their status (404, 405).  A SQLAlchemy error
that escaped a service unmapped is mapped here the same way the services map
them (:func:`engine.store.storage_error_for`): a database that cannot be
reached is 503 ``storage_error`` (try again), a write refused by a uniqueness
or reference rule is 409 ``storage_conflict`` (retrying the same request
cannot help), any other database failure is 500.  A 500 says nothing of the
internals (the traceback goes to the log).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from engine import errors as e
from engine.store import DRIVER_ERROR, storage_error_for

__all__ = ["STATUS", "error_response", "install", "status_of"]

log = logging.getLogger(__name__)

STATUS: dict[type[e.GengbaoError], int] = {
    e.GengbaoError: 500,
    e.ConfigError: 500,
    e.DurationError: 500,  # a stored duration that no longer reads: configuration
    e.DefinitionError: 500,  # a stored definition that no longer compiles: our fault
    e.PatrolRulesError: 500,  # the server's patrol rules file: configuration
    e.GridError: 422,
    e.UnknownUnit: 404,
    e.UnknownPerson: 404,
    e.NotFound: 404,
    e.UnknownCase: 404,
    e.UnknownWorkflow: 404,
    e.UnknownPatrol: 404,
    e.UnknownTimer: 404,
    e.UnknownNotification: 404,
    e.AlreadyAssigned: 409,
    e.TimerError: 500,  # a timer's effects failed: recorded on the timer, not a request error
    e.UnknownTimerKind: 500,
    e.TimerNotFailed: 409,
    e.EventRejected: 422,
    e.UnknownTrigger: 422,
    e.TriggerNotAllowed: 409,
    e.NotPermitted: 403,
    e.InvalidData: 422,
    e.GuardFailed: 422,
    e.VersionConflict: 409,
    e.IdempotencyMismatch: 422,
    e.ImportRefused: 422,
    e.CountersignPending: 409,  # the case waits for its countersign parties
    e.NoCountersign: 409,
    e.PartyNotPending: 409,
    e.TransferNotAllowed: 409,
    e.TransferPending: 409,
    e.TransferNotPending: 409,
    e.MigrationRefused: 409,  # some listed case cannot move: none moved
    e.SupervisionRefused: 409,  # the case is closed, answered or takes no supervision
    e.UnknownSupervision: 404,
    e.ImportFileError: 422,
    e.RequestInProgress: 409,  # with Retry-After: the first request's answer comes later
    e.Unauthenticated: 401,
    e.SignInRefused: 401,
    e.SignInLocked: 429,  # with Retry-After: the lock-out's end
    e.CsrfRefused: 403,
    e.PasswordRefused: 422,
    e.SurveyFileError: 422,  # an uploaded findings file that cannot be read at all
    e.ExpressionError: 500,  # a stored guard that no longer compiles: our fault
    e.TemplateError: 500,  # a server-side template: configuration
    e.TemplateProblem: 500,
    e.DeliveryFailed: 502,  # the channel's far end failed
    e.CalendarError: 500,  # a deadline the server's calendar cannot compute
    e.InvalidPeriod: 500,  # a stored patrol rule: configuration
    e.InvalidDateRange: 422,
    e.InvalidGeometry: 422,
    e.UnknownPhoto: 404,
    e.InvalidPhoto: 422,
    e.PhotoTooLarge: 413,
    e.UnsupportedPhotoType: 415,
    e.StorageError: 500,  # a bug or a schema mismatch: retrying cannot help
    e.StorageUnavailable: 503,  # try again
    e.LockTimedOut: 503,
    e.StorageConflict: 409,  # a genuine integrity violation: not "try again"
}

# Errors raised by Starlette / FastAPI themselves, by status.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "not_permitted",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


# Headers that go with an error code (401s always carry WWW-Authenticate).
_HEADERS: dict[str, dict[str, str]] = {e.RequestInProgress.code: {"Retry-After": "1"}}


def status_of(exc: e.GengbaoError) -> int:
    for cls in type(exc).__mro__:
        status = STATUS.get(cls)
        if status is not None:
            return status
    return 500


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def error_response(
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": code, "message": message, "details": _jsonable(dict(details or {}))}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


CONFLICT_MESSAGE = "the request conflicts with data already stored; nothing was saved"


async def _gengbao(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.GengbaoError)
    status = status_of(exc)
    if isinstance(exc, e.StorageConflict):  # a genuine integrity violation: a bug or a race
        log.error("%s %s: %s", request.method, request.url.path, exc, exc_info=exc)
        return error_response(status, exc.code, CONFLICT_MESSAGE)
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc, exc_info=exc)
        if not isinstance(exc, e.StorageUnavailable):
            return error_response(status, exc.code, "internal error; see the server log")
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else _HEADERS.get(exc.code)
    return error_response(status, exc.code, exc.message, exc.details, headers)


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
        return ".".join(parts) or "body"
    return ".".join(parts)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields: dict[str, str] = {}
    for error in exc.errors():
        name = _field_name(error.get("loc", ()))
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            name, message = "body", f"not valid JSON: {error.get('ctx', {}).get('error', message)}"
        fields[name] = f"{fields[name]}; {message}" if name in fields else message
    text = "; ".join(f"{name}: {why}" for name, why in fields.items())
    return error_response(422, "invalid_request", f"invalid request: {text}", {"fields": fields})


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400:  # FastAPI could not read the body (not UTF-8, too deep, ...)
        why = "cannot be read as JSON (not UTF-8, or nested too deep)"
        return error_response(
            422, "invalid_request", f"invalid request: body {why}", {"fields": {"body": why}}
        )
    code = _HTTP_CODES.get(exc.status_code, "error" if exc.status_code >= 500 else "bad_request")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def _database(request: Request, exc: Exception) -> JSONResponse:
    """A SQLAlchemy error no service mapped: mapped here by the same rules."""
    assert isinstance(exc, DRIVER_ERROR)
    mapped = storage_error_for(exc)
    log.error("%s %s: database error", request.method, request.url.path, exc_info=exc)
    status = status_of(mapped)
    if isinstance(mapped, e.StorageUnavailable):
        return error_response(status, mapped.code, "the database could not be used; try again")
    if isinstance(mapped, e.StorageConflict):
        return error_response(status, mapped.code, CONFLICT_MESSAGE)
    return error_response(status, mapped.code, "internal error; see the server log")


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s: unexpected error", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error; see the server log")


def install(api: FastAPI) -> None:
    """Register the handlers (Starlette picks the nearest class of the exception)."""
    api.add_exception_handler(e.GengbaoError, _gengbao)
    api.add_exception_handler(RequestValidationError, _validation)
    api.add_exception_handler(HTTPException, _http)
    api.add_exception_handler(DRIVER_ERROR, _database)
    api.add_exception_handler(Exception, _internal)
