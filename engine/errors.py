"""The one exceptions tree of gengbao.

Every error the engine raises on purpose derives from :class:`GengbaoError`;
lower-level errors (SQLAlchemy, transitions, YAML, Jinja2) are translated at
the edge of the module that calls them and never leak out.  Each class builds
its own message from structured fields, so callers (the CLI, the HTTP API)
can render the message and still act on the fields.

    GengbaoError
    ├── ConfigError                 settings file or environment is wrong
    │   └── DurationError           a duration that cannot be read ('2 weeks', '1.5h')
    ├── DefinitionError             a workflow file has errors (carries diagnostics)
    │   └── PatrolRulesError        a patrol rules file has errors
    ├── GridError                   a grid file is wrong, or a unit/person is unknown
    │   ├── UnknownUnit
    │   └── UnknownPerson
    ├── NotFound
    │   ├── UnknownCase
    │   ├── UnknownWorkflow
    │   ├── UnknownPatrol
    │   ├── UnknownTimer
    │   ├── UnknownNotification     no such notification (notifications ack)
    │   ├── UnknownSupervision      no such supervision notice on the case
    │   └── UnknownPhoto            no such patrol photo the viewer may see
    ├── EventRejected               an event was refused; nothing was written
    │   ├── UnknownTrigger          no such trigger in the workflow
    │   ├── TriggerNotAllowed       trigger exists, but not from the current state
    │   ├── NotPermitted            actor unknown or lacks a role
    │   ├── InvalidData             payload / case data fails its field types
    │   ├── GuardFailed             every candidate guard was false
    │   ├── VersionConflict         the case moved on under us
    │   ├── IdempotencyMismatch     same key, different request
    │   ├── ImportRefused           a bulk import with bad lines; nothing was written
    │   ├── CountersignPending      the state's countersign (会签) still waits on parties
    │   ├── NoCountersign           sign/refuse on a case whose state has none waiting
    │   ├── PartyNotPending         that party has already signed, refused or been cancelled
    │   ├── AlreadyAssigned         签收: someone else already acknowledged the case
    │   ├── TransferNotAllowed      the case's state declares no transfer (移送)
    │   ├── TransferPending         a transfer waits for its receiver: nothing else may happen
    │   ├── TransferNotPending      no such transfer waiting (answered already, or none)
    │   ├── SupervisionRefused      a supervision notice or reply the case cannot take
    │   └── MigrationRefused        cases that cannot move to another workflow version
    ├── TimerError                  a timer could not fire, or cannot be re-armed
    │   ├── UnknownTimerKind        a timer row of a kind no code handles
    │   └── TimerNotFailed          ``timers retry`` on a timer that has not failed
    ├── RequestInProgress           same key, its first request still running
    ├── Unauthenticated             no API token, or an unknown or revoked one
    │   └── SignInRefused           the pages: wrong person or password (says nothing more)
    │       └── SignInLocked        too many failed sign-ins: wait until the lock-out ends
    ├── CsrfRefused                 a page form without its session's CSRF token
    ├── PasswordRefused             a password too short or too long to be set
    ├── SurveyFileError             a findings CSV cannot be imported at all
    ├── ImportFileError             a case import file cannot be read at all (encoding, header)
    ├── ExpressionError             a guard expression does not compile (carries its column)
    ├── TemplateError               a notification template is missing, unreadable or broken
    │   └── TemplateProblem         an SMS gateway's request template is unusable
    ├── DeliveryFailed              a channel could not deliver a message (says if retryable)
    ├── CalendarError               a date the working-day calendar cannot reach, a bad zone
    ├── InvalidPeriod               a patrol period that is not week, month or N days
    ├── InvalidDateRange            a date range that ends before it starts
    ├── InvalidGeometry             a GeoJSON geometry that is malformed or not lng/lat
    ├── InvalidPhoto                an uploaded patrol photo refused; nothing was stored
    │   ├── PhotoTooLarge           more bytes than ``photos.max_bytes``
    │   └── UnsupportedPhotoType    not JPEG, PNG, WebP or HEIC by its first bytes
    └── StorageError                the database refused or failed a statement (a bug, a schema
        │                           mismatch, a bad URL): not worth retrying
        ├── StorageUnavailable      the database cannot be reached, is busy, or a lock wait
        │   │                       timed out: try again
        │   └── LockTimedOut        a bounded lock wait gave up (``lock_wait_limit``)
        └── StorageConflict         a write broke a uniqueness or reference rule: retrying the
                                    same request fails the same way

Lower-level errors are mapped onto this tree where they arise:
SQLAlchemy's by :func:`engine.store.errors.map_storage_errors` where a service
opens a connection or transaction, YAML's and Jinja2's by the readers, OSError
by the file readers; ``tests/test_error_mapping.py`` checks each one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "AlreadyAssigned",
    "CalendarError",
    "ConfigError",
    "CountersignPending",
    "CsrfRefused",
    "DefinitionError",
    "DeliveryFailed",
    "DurationError",
    "EventRejected",
    "ExpressionError",
    "GengbaoError",
    "GridError",
    "GuardFailed",
    "IdempotencyMismatch",
    "ImportFileError",
    "ImportRefused",
    "InvalidData",
    "InvalidDateRange",
    "InvalidPeriod",
    "InvalidPhoto",
    "LockTimedOut",
    "MigrationRefused",
    "NoCountersign",
    "NotFound",
    "NotPermitted",
    "PartyNotPending",
    "PasswordRefused",
    "PatrolRulesError",
    "PhotoTooLarge",
    "RequestInProgress",
    "SignInLocked",
    "SignInRefused",
    "StorageConflict",
    "StorageError",
    "StorageUnavailable",
    "SupervisionRefused",
    "SurveyFileError",
    "TemplateError",
    "TemplateProblem",
    "TimerError",
    "TimerNotFailed",
    "TransferNotAllowed",
    "TransferNotPending",
    "TransferPending",
    "TriggerNotAllowed",
    "Unauthenticated",
    "UnknownCase",
    "UnknownNotification",
    "UnknownPatrol",
    "UnknownPerson",
    "UnknownPhoto",
    "UnknownSupervision",
    "UnknownTimer",
    "UnknownTimerKind",
    "UnknownTrigger",
    "UnknownUnit",
    "UnknownWorkflow",
    "UnsupportedPhotoType",
    "VersionConflict",
]


class GengbaoError(Exception):
    """Root of every error gengbao raises on purpose."""

    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def __str__(self) -> str:
        return self.message


class ConfigError(GengbaoError):
    code = "config_error"


class DurationError(ConfigError, ValueError):
    """A duration administrators wrote that cannot be read; the message says how to write it.

    Also a :class:`ValueError`, so value parsers can treat it like any bad value.
    """

    code = "invalid_duration"


class DefinitionError(GengbaoError):
    """A workflow definition has errors; ``diagnostics`` lists every one."""

    code = "invalid_definition"

    def __init__(self, diagnostics: Sequence[Any]) -> None:
        self.diagnostics = list(diagnostics)
        lines = [str(d) for d in self.diagnostics]
        super().__init__("\n".join(lines) or "invalid definition")


class PatrolRulesError(DefinitionError):
    """A patrol rules file has errors; ``diagnostics`` lists every one."""

    code = "invalid_patrol_rules"


class GridError(GengbaoError):
    code = "grid_error"


class UnknownUnit(GridError):
    code = "unknown_unit"

    def __init__(self, unit: str) -> None:
        super().__init__(f"unknown grid unit {unit!r}", unit=unit)


class UnknownPerson(GridError):
    code = "unknown_person"

    def __init__(self, person: str) -> None:
        super().__init__(f"unknown person {person!r}", person=person)


class NotFound(GengbaoError):
    code = "not_found"


class UnknownCase(NotFound):
    code = "unknown_case"

    def __init__(self, case_id: str) -> None:
        super().__init__(f"unknown case {case_id!r}", case=case_id)


class UnknownWorkflow(NotFound):
    code = "unknown_workflow"

    def __init__(self, workflow: str, version: int | None = None) -> None:
        what = workflow if version is None else f"{workflow} v{version}"
        super().__init__(f"unknown workflow {what!r}", workflow=workflow, version=version)


class UnknownPatrol(NotFound):
    code = "unknown_patrol"

    def __init__(self, patrol_id: str) -> None:
        super().__init__(f"unknown patrol {patrol_id!r}", patrol=patrol_id)


class UnknownTimer(NotFound):
    code = "unknown_timer"

    def __init__(self, timer_id: int) -> None:
        super().__init__(f"unknown timer {timer_id}", timer=timer_id)


class TimerError(GengbaoError):
    """A timer could not fire (its effects raised) or cannot be re-armed."""

    code = "timer_error"


class UnknownTimerKind(TimerError):
    code = "unknown_timer_kind"

    def __init__(self, timer_id: int, kind: str, known: Sequence[str]) -> None:
        super().__init__(
            f"timer {timer_id}: unknown kind {kind!r} (known: {', '.join(known)})",
            timer=timer_id,
            kind=kind,
            known=list(known),
        )


class TimerNotFailed(TimerError):
    code = "timer_not_failed"

    def __init__(self, timer_id: int, status: str) -> None:
        super().__init__(
            f"timer {timer_id} is {status}, not failed: only a failed timer can be retried",
            timer=timer_id,
            status=status,
        )


class EventRejected(GengbaoError):
    """An event (or a case creation) was refused; nothing was persisted."""

    code = "rejected"


class UnknownTrigger(EventRejected):
    code = "unknown_trigger"

    def __init__(self, trigger: str, allowed: Sequence[str]) -> None:
        listed = ", ".join(allowed) or "none"
        super().__init__(
            f"unknown trigger {trigger!r}; triggers allowed in the current state: {listed}",
            trigger=trigger,
            allowed=list(allowed),
        )


class TriggerNotAllowed(EventRejected):
    code = "trigger_not_allowed"

    def __init__(self, trigger: str, state: str, allowed: Sequence[str]) -> None:
        listed = ", ".join(allowed) or "none"
        super().__init__(
            f"trigger {trigger!r} is not allowed in state {state!r}; allowed: {listed}",
            trigger=trigger,
            state=state,
            allowed=list(allowed),
        )


class NotPermitted(EventRejected):
    code = "not_permitted"

    def __init__(
        self, actor: str, action: str, unit: str, roles: Sequence[str], reason: str = ""
    ) -> None:
        needed = ", ".join(roles) or "any role on the unit's chain"
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"{actor!r} may not {action} on unit {unit!r}{why}; it needs one of: {needed}",
            actor=actor,
            action=action,
            unit=unit,
            roles=list(roles),
        )


class InvalidData(EventRejected):
    """Data failed its field declarations; ``problems`` maps field → reason."""

    code = "invalid_data"

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        text = "; ".join(f"{name}: {why}" for name, why in self.problems.items())
        super().__init__(f"invalid data: {text}", fields=self.problems)


class GuardFailed(EventRejected):
    code = "guard_failed"

    def __init__(self, trigger: str, guards: Sequence[str]) -> None:
        listed = " | ".join(guards)
        super().__init__(
            f"trigger {trigger!r} refused: guard false: {listed}",
            trigger=trigger,
            guards=list(guards),
        )


class VersionConflict(EventRejected):
    code = "version_conflict"

    def __init__(self, case_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"case {case_id!r} is at revision {actual}, not {expected}",
            case=case_id,
            expected=expected,
            actual=actual,
        )


class IdempotencyMismatch(EventRejected):
    code = "idempotency_mismatch"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"idempotency key {key!r} was already used for a different request", key=key
        )


# -- countersign (会签): engine/duties/countersign.py ---------------------------------
class CountersignPending(EventRejected):
    """The state's countersign has not joined: its transitions wait for the parties."""

    code = "countersign_pending"

    def __init__(self, case_id: str, state: str, trigger: str, pending: Sequence[str]) -> None:
        super().__init__(
            f"trigger {trigger!r} must wait: the countersign of state {state!r} still needs "
            f"{', '.join(pending)}",
            case=case_id,
            state=state,
            trigger=trigger,
            pending=list(pending),
        )


class NoCountersign(EventRejected):
    code = "no_countersign"

    def __init__(self, case_id: str, state: str) -> None:
        super().__init__(
            f"case {case_id!r} is in state {state!r}, where no countersign waits",
            case=case_id,
            state=state,
        )


class PartyNotPending(EventRejected):
    code = "party_not_pending"

    def __init__(self, case_id: str, role: str, status: str) -> None:
        super().__init__(
            f"party {role!r} of case {case_id!r} is {status}, not pending",
            case=case_id,
            role=role,
            status=status,
        )


class ImportRefused(EventRejected):
    """A bulk import (``case import``, ``POST /cases/batch``) had bad lines and wrote
    nothing; ``problems`` lists each as ``{"line", "field", "message"}`` and ``items``
    the answer per item."""

    code = "import_refused"

    def __init__(
        self, problems: Sequence[Mapping[str, Any]], items: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        self.problems = [dict(p) for p in problems]
        first = self.problems[0] if self.problems else {}
        where = f"line {first.get('line')}: " if first else ""
        field = f"{first.get('field')}: " if first.get("field") else ""
        super().__init__(
            f"nothing imported: {len(self.problems)} bad item(s); "
            f"first: {where}{field}{first.get('message', '')}",
            problems=self.problems,
            items=[dict(i) for i in items],
        )


# -- assignment and acknowledgement (签收), notification reads ---------------------
class AlreadyAssigned(EventRejected):
    """A case in this state visit already has its assignee; only an assigner reassigns."""

    code = "already_assigned"

    def __init__(self, case_id: str, state: str, assignee: str) -> None:
        super().__init__(
            f"case {case_id!r} in state {state!r} is already acknowledged by {assignee!r}; "
            "a leader can reassign it (case assign)",
            case=case_id,
            state=state,
            assignee=assignee,
        )


class UnknownNotification(NotFound):
    code = "unknown_notification"

    def __init__(self, notification_id: int) -> None:
        super().__init__(f"unknown notification {notification_id}", notification=notification_id)


# -- transfers (移送/转办): engine/duties/transfers.py ------------------------------
class TransferNotAllowed(EventRejected):
    code = "transfer_not_allowed"

    def __init__(self, case_id: str, state: str) -> None:
        super().__init__(
            f"case {case_id!r} cannot be transferred in state {state!r}: "
            "the state declares no 'transfer'",
            case=case_id,
            state=state,
        )


class TransferPending(EventRejected):
    """A transfer waits for its receiving unit to accept or return it."""

    code = "transfer_pending"

    def __init__(self, case_id: str, transfer_id: int, to_unit: str, to_role: str | None) -> None:
        receiver = f"{to_role} of {to_unit}" if to_role else to_unit
        super().__init__(
            f"case {case_id!r} has transfer {transfer_id} pending with {receiver}: "
            "it must be accepted or returned first",
            case=case_id,
            transfer=transfer_id,
            to_unit=to_unit,
            to_role=to_role,
        )


class TransferNotPending(EventRejected):
    code = "transfer_not_pending"

    def __init__(
        self, case_id: str, transfer_id: int | None, status: str | None, by: str | None
    ) -> None:
        if transfer_id is None:
            text = f"case {case_id!r} has no transfer waiting to be answered"
        elif status is None:
            text = f"case {case_id!r} has no transfer {transfer_id}"
        else:
            who = f" by {by!r}" if by else ""
            text = f"transfer {transfer_id} of case {case_id!r} was already {status}{who}"
        super().__init__(text, case=case_id, transfer=transfer_id, status=status, answered_by=by)


# -- supervision (督办, engine/duties/supervision.py) ------------------------------


class UnknownSupervision(NotFound):
    code = "unknown_supervision"

    def __init__(self, case_id: str, supervision: int | None) -> None:
        what = f"no supervision {supervision}" if supervision is not None else "no open supervision"
        super().__init__(f"case {case_id!r} has {what}", case=case_id, supervision=supervision)


class SupervisionRefused(EventRejected):
    """A supervision notice, or a reply to one, that the case cannot take now."""

    code = "supervision_refused"

    def __init__(self, case_id: str, reason: str) -> None:
        super().__init__(f"case {case_id!r}: {reason}", case=case_id, reason=reason)


class MigrationRefused(EventRejected):
    """``workflow migrate`` moves every listed case or none: ``problems`` lists each
    case that cannot move (``{"case", "state", "reason"}``; ``case`` None for a
    problem of the request itself, such as a ``--map`` naming no state)."""

    code = "migration_refused"

    def __init__(self, problems: Sequence[Mapping[str, Any]]) -> None:
        self.problems = [dict(p) for p in problems]
        first = self.problems[0] if self.problems else {}
        where = f"case {first['case']}: " if first.get("case") else ""
        super().__init__(
            f"nothing migrated: {len(self.problems)} problem(s); "
            f"first: {where}{first.get('reason', '')}",
            problems=self.problems,
        )


class RequestInProgress(GengbaoError):
    """A request with this idempotency key is still being processed (by this or
    another server); nothing was done for this one.  Retrying later gets the
    first request's answer."""

    code = "request_in_progress"

    def __init__(self, key: str, waited_ms: int) -> None:
        super().__init__(
            f"a request with idempotency key {key!r} is still in progress "
            f"(waited {waited_ms} ms for it); retry later to get its answer",
            key=key,
            waited_ms=waited_ms,
        )


class Unauthenticated(GengbaoError):
    """The request carries no API token, or one that is malformed, unknown or revoked."""

    code = "unauthenticated"

    def __init__(self, reason: str) -> None:
        super().__init__(f"authentication required: {reason}")


class SignInRefused(Unauthenticated):
    """A page sign-in with an unknown person, no password set, or a wrong password:
    the message does not say which, so it tells nobody which ids exist."""

    code = "sign_in_refused"

    def __init__(self) -> None:
        GengbaoError.__init__(self, "sign-in refused: wrong person id, phone or password")


class SignInLocked(SignInRefused):
    """Too many failed sign-ins in a row for one person: refused until *until*."""

    code = "sign_in_locked"

    def __init__(self, until: Any, seconds: int) -> None:
        GengbaoError.__init__(
            self,
            f"sign-in locked after repeated failures; try again in {seconds} s",
            until=str(until),
            seconds=seconds,
        )
        self.until = until
        self.seconds = seconds


class CsrfRefused(GengbaoError):
    """A page form posted without the CSRF token of its session (or with another one):
    nothing was done."""

    code = "csrf_refused"

    def __init__(self) -> None:
        super().__init__("the form's security token is missing or wrong; reload the page")


class PasswordRefused(GengbaoError):
    """A password that cannot be set (too short, too long)."""

    code = "password_refused"

    def __init__(self, reason: str) -> None:
        super().__init__(f"password refused: {reason}", reason=reason)


class SurveyFileError(GengbaoError):
    """A findings file cannot be imported at all (unreadable, a required column missing)."""

    code = "invalid_survey_file"


class ImportFileError(GengbaoError):
    """A case import file cannot be read at all (not UTF-8, no ``unit`` column, an
    unknown column): nothing was written."""

    code = "invalid_import_file"


class ExpressionError(GengbaoError):
    """A guard that cannot be compiled; ``offset`` is the 0-based column in the text."""

    code = "invalid_expression"

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message, offset=offset)
        self.offset = offset


class TemplateError(GengbaoError):
    """A template file that is missing, malformed or does not compile.

    *file*, *line* and *column* are set when the problem is at a line of the
    template file (an escape the sandbox would refuse).
    """

    code = "template_error"

    def __init__(self, message: str, *, file: str = "", line: int = 1, column: int = 1) -> None:
        super().__init__(message, file=file, line=line, column=column)
        self.file, self.line, self.column = file, line, column


class TemplateProblem(TemplateError):
    """A gateway template that does not compile, uses unknown names or breaks the
    sandbox; *key* names the option it came from (``url``, ``body``) when known."""

    code = "gateway_template_error"

    def __init__(self, message: str, *, key: str = "") -> None:
        super().__init__(message)
        self.details["key"] = key
        self.key = key


class DeliveryFailed(GengbaoError):
    """A channel could not deliver; ``retryable`` says whether another attempt may succeed."""

    code = "delivery_failed"

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason, retryable=retryable)
        self.reason = reason
        self.retryable = retryable


class CalendarError(GengbaoError):
    """The working-day calendar cannot answer: a year outside 1..9999, a day past its
    last one, an unknown time zone, or a working-day duration under one day."""

    code = "calendar_error"


class InvalidPeriod(GengbaoError):
    """A patrol period (``every:``) that is not ``week``, ``month`` or ``N days``."""

    code = "invalid_period"

    def __init__(self, reason: str, value: object = None) -> None:
        super().__init__(reason, value=value)


class InvalidDateRange(GengbaoError):
    """A date range whose last day comes before its first."""

    code = "invalid_date_range"

    def __init__(self, first: Any, last: Any) -> None:
        super().__init__(
            f"the date range ends on {last}, before it starts on {first}",
            first=str(first),
            last=str(last),
        )
        self.first, self.last = first, last


class InvalidGeometry(GengbaoError):
    """A GeoJSON geometry gengbao cannot use; ``where`` names the member (e.g.
    ``boundary.coordinates[0][3]``)."""

    code = "invalid_geometry"

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}", where=where, problem=problem)
        self.where = where
        self.problem = problem


# -- patrol photos (engine/patrols/photos.py) ---------------------------------------
class UnknownPhoto(NotFound):
    code = "unknown_photo"

    def __init__(self, sha256: str) -> None:
        super().__init__(f"unknown photo {sha256!r}", sha256=sha256)


class InvalidPhoto(GengbaoError):
    """An uploaded patrol photo that was refused; nothing was stored."""

    code = "invalid_photo"

    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(f"photo refused: {reason}; nothing was stored", **details)


class PhotoTooLarge(InvalidPhoto):
    code = "photo_too_large"

    def __init__(self, size: int, max_bytes: int) -> None:
        super().__init__(
            f"{size} bytes is more than the {max_bytes} bytes allowed (photos.max_bytes)",
            bytes=size,
            max_bytes=max_bytes,
        )


class UnsupportedPhotoType(InvalidPhoto):
    code = "unsupported_photo_type"

    def __init__(self, accepted: Sequence[str]) -> None:
        super().__init__(
            f"its content is not a photo of a type accepted ({', '.join(accepted)})",
            accepted=list(accepted),
        )


class StorageError(GengbaoError):
    """The database refused or failed a statement, not in a way a retry would fix."""

    code = "storage_fault"


class StorageUnavailable(StorageError):
    """The database cannot be reached, is busy, or a lock wait timed out: try again.

    Its code is ``storage_error``, the code every database failure had before the
    tree told them apart: clients already retry on a 503 with it.
    """

    code = "storage_error"


class LockTimedOut(StorageUnavailable):
    """A lock wait bounded by :func:`engine.store.lock_wait_limit` gave up."""

    def __init__(self, waited_ms: int) -> None:
        super().__init__(f"a lock wait gave up after {waited_ms} ms", waited_ms=waited_ms)
        self.waited_ms = waited_ms


class StorageConflict(StorageError):
    """A write broke a uniqueness or reference rule (an ``IntegrityError``)."""

    code = "storage_conflict"
