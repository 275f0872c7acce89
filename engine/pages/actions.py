"""The actions posted from the case page: an event, 签收, a countersign signature, the
answer to a transfer, the reply to a supervision notice.

Each checks the session's CSRF token first, calls the service the HTTP API calls for
the same action (the signed-in person as actor and viewer), and either leads back to
the case page (303, so a reload does not post again) or shows the page again with
the form as it was sent and the reason it was refused
(:class:`~engine.pages.cases.Refusal`), with the API's status code.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from engine.errors import EventRejected, InvalidData
from engine.pages.cases import CaseId, Refusal, SubjectId, case_page
from engine.pages.errors import friendly
from engine.pages.forms import FormDep, fields_of, message_of, parse
from engine.pages.session import app_of, check_csrf, current, status_of, to_login
from engine.people import UiSession

__all__ = ["router"]

router = APIRouter()


def _after(case_id: str, done: str) -> Response:
    return RedirectResponse(f"/ui/cases/{case_id}?done={done}", 303)


def _refused(
    request: Request,
    case_id: str,
    session: UiSession,
    form_key: str,
    form: Mapping[str, str],
    exc: EventRejected,
) -> Response:
    problems = (
        {k: message_of(v) for k, v in exc.problems.items()} if isinstance(exc, InvalidData) else {}
    )
    if not problems:
        message = friendly(exc)
    elif form_key.startswith("act:"):
        message = "请检查标出的字段。"
    else:  # a note or reason: the form has one text box, the message says what it lacks
        message = "；".join(problems.values())
    refusal = Refusal(form_key, form, problems, message)
    return case_page(request, case_id, session, refusal, status_of(request, exc))


@router.post("/cases/{case_id}/events")
def act(case_id: CaseId, request: Request, form: FormDep) -> Response:
    session = current(request)
    if session is None:
        return to_login(request)
    check_csrf(session, form.get("csrf"))
    app = app_of(request)
    trigger = form.get("trigger", "")
    form_key = f"act:{trigger}:"
    offered = [
        a
        for t in app.tasks.for_actor(session.person, case=case_id)
        for a in t.actions
        if a["trigger"] == trigger and t.kind in ("act", "ack")
    ]
    fields = fields_of(offered[0]["payload"] if offered else [])
    payload, problems = parse(fields, form, app.settings.timezone)
    if problems:  # what the form's text cannot be read as: nothing was sent
        refusal = Refusal(form_key, form, problems, "请检查标出的字段。")
        return case_page(request, case_id, session, refusal, 422)
    revision = form.get("revision", "")
    try:
        app.cases.submit_event(
            case_id,
            trigger,
            session.person,
            payload,
            revision=int(revision) if revision.isdigit() else None,
            viewer=session.person,
        )
    except EventRejected as exc:
        return _refused(request, case_id, session, form_key, form, exc)
    return _after(case_id, trigger)


@router.post("/cases/{case_id}/ack")
def ack(case_id: CaseId, request: Request, form: FormDep) -> Response:
    session = current(request)
    if session is None:
        return to_login(request)
    check_csrf(session, form.get("csrf"))
    try:
        app_of(request).assignments.ack(case_id, session.person, viewer=session.person)
    except EventRejected as exc:
        return _refused(request, case_id, session, "ack:ack:", form, exc)
    return _after(case_id, "ack")


@router.post("/cases/{case_id}/signatures/{party_id}")
def sign(case_id: CaseId, party_id: SubjectId, request: Request, form: FormDep) -> Response:
    session = current(request)
    if session is None:
        return to_login(request)
    check_csrf(session, form.get("csrf"))
    app = app_of(request)
    decision = form.get("decision", "")
    note = form.get("note", "").strip() or None
    role = next(
        (
            p.role
            for p in app.countersigns.parties(case_id, viewer=session.person)
            if p.id == party_id
        ),
        None,
    )
    form_key = f"sign:{decision}:{party_id}"
    try:
        if decision == "refuse":
            app.countersigns.refuse(
                case_id, session.person, reason=note or "", role=role, viewer=session.person
            )
        else:
            app.countersigns.sign(
                case_id, session.person, role=role, note=note, viewer=session.person
            )
    except EventRejected as exc:
        return _refused(request, case_id, session, form_key, form, exc)
    return _after(case_id, decision or "sign")


@router.post("/cases/{case_id}/transfers/{transfer_id}/{answer}")
def answer_transfer(
    case_id: CaseId, transfer_id: SubjectId, answer: str, request: Request, form: FormDep
) -> Response:
    session = current(request)
    if session is None:
        return to_login(request)
    check_csrf(session, form.get("csrf"))
    transfers = app_of(request).transfers
    note = form.get("note", "")
    trigger = "transfer_return" if answer == "return" else "transfer_accept"
    try:
        if answer == "return":
            transfers.return_(
                case_id, session.person, note, transfer_id=transfer_id, viewer=session.person
            )
        else:
            transfers.accept(
                case_id, session.person, note, transfer_id=transfer_id, viewer=session.person
            )
    except EventRejected as exc:
        return _refused(request, case_id, session, f"transfer:{trigger}:{transfer_id}", form, exc)
    return _after(case_id, trigger)


@router.post("/cases/{case_id}/supervisions/{supervision_id}/reply")
def reply(case_id: CaseId, supervision_id: SubjectId, request: Request, form: FormDep) -> Response:
    session = current(request)
    if session is None:
        return to_login(request)
    check_csrf(session, form.get("csrf"))
    try:
        app_of(request).supervision.reply(
            case_id, session.person, form.get("note", ""), supervision_id, viewer=session.person
        )
    except EventRejected as exc:
        key = f"supervision:supervise_reply:{supervision_id}"
        return _refused(request, case_id, session, key, form, exc)
    return _after(case_id, "supervise_reply")
