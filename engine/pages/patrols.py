"""``/ui/patrols`` (巡查): record a patrol with its photos from a phone, and the ledger.

The page holds one plain form (``multipart/form-data``, with the CSRF token): the unit
(the units the signed-in person may record patrols for, :meth:`Ledger.units_for`),
the time (local, default now), the route walked (巡查路线), what was found (发现情况)
and up to :data:`MAX_PHOTOS` photos.  Below it: the patrol status of the current
period of each unit the person sees (done vs required, from the obligations the
assessment counts) and the ledger of the last :data:`LEDGER_DAYS` days, newest first.

Posting checks everything first — the CSRF token, the unit (in the person's scope),
the time (not in the future), the lengths, and every photo with
:meth:`PatrolPhotos.check` (size ``photos.max_bytes``, type by its first bytes) — and
a refusal shows the form again as it was typed, the message next to its field (422),
having written nothing.  Then :meth:`PatrolPhotos.record_with_photos` records the
patrol and its photos as one record, or none (the signed-in person as the actor):
the files first, content-addressed under the data folder, then in one transaction
the patrol, each hash in ``patrol_photos`` and in the history of every case the
patrol filed — a photo that cannot be stored (a full disk) leaves no patrol behind.

A patrol record has no text field for a route note (its ``route`` is a list of map
points), so the note is kept in the findings text, as its first line
``巡查路线：…`` (:data:`ROUTE_LABEL`); the ledger shows that line as the route.

Photos are shown through ``/ui/photos/{sha256}``, which checks the session and the
viewer's scope (:meth:`PatrolPhotos.open`): a photo of a patrol the person does not see
is a 404 page, like the patrol itself.  The form's body limit is
:func:`form_limit` (``engine/api/app.py``): a larger body gets the 413 page.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from engine.errors import (
    InvalidData,
    InvalidPhoto,
    NotPermitted,
    PhotoTooLarge,
    UnknownPatrol,
    UnknownUnit,
    UnsupportedPhotoType,
)
from engine.pages.forms import message_of
from engine.pages.render import local_time, page
from engine.pages.session import app_of, check_csrf, current, to_login
from engine.patrols.ledger import PatrolView
from engine.people import UiSession

__all__ = ["MAX_PHOTOS", "PATROL_FORM", "ROUTE_LABEL", "form_limit", "router"]

router = APIRouter()

MAX_PHOTOS = 6  # photos in one form
FORM_SLACK = 256 * 1024  # the text fields and the multipart framing around the photos
PATROL_FORM = re.compile(r"/ui/patrols")  # its own body limit (engine/api/app.py)
LEDGER_DAYS = 60
LEDGER_LIMIT = 100
STATUS_LIMIT = 100
MAX_ROUTE = 200  # characters of the route note
MAX_FINDINGS = 1500  # characters of the findings: with the route line, within the API's 2000
ROUTE_LABEL = "巡查路线："
FIELDS = ("unit", "started", "route_note", "findings")
Sha256 = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]


def form_limit(max_bytes: int) -> int:
    """The largest body ``POST /ui/patrols`` takes: :data:`MAX_PHOTOS` photos of
    *max_bytes* (``photos.max_bytes``) and the rest of the form."""
    return MAX_PHOTOS * max_bytes + FORM_SLACK


@dataclass(frozen=True)
class Upload:
    name: str  # the file name the phone gave, for the messages
    content: bytes  # at most max_bytes + 1: one byte more is enough to refuse it


@dataclass(frozen=True)
class PatrolForm:
    text: dict[str, str]
    photos: list[Upload]


async def _patrol_form(request: Request) -> PatrolForm:
    """The posted form: its text fields (the last of a repeated name) and the files of
    ``photos`` (an empty file input, sent with no name and no bytes, is none)."""
    max_bytes = app_of(request).photos.max_bytes
    text: dict[str, str] = {}
    photos: list[Upload] = []
    async with request.form(max_files=4 * MAX_PHOTOS, max_fields=50) as form:
        for key, value in form.multi_items():
            if isinstance(value, str):
                text[key] = value
            elif isinstance(value, UploadFile) and key == "photos":
                content = await value.read(max_bytes + 1)
                if value.filename or content:
                    photos.append(Upload(value.filename or "", content))
    return PatrolForm(text, photos)


PatrolFormDep = Annotated[PatrolForm, Depends(_patrol_form)]


# -- the page ----------------------------------------------------------------------


def _local_input(moment: dt.datetime, tz: str) -> str:
    """*moment* as a ``datetime-local`` input shows it: ``2026-09-18T10:00``."""
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")


def _split(findings: str | None) -> tuple[str, str]:
    """(route note, the rest) of a patrol's findings text (see :data:`ROUTE_LABEL`)."""
    text = findings or ""
    if text.startswith(ROUTE_LABEL):
        first, _, rest = text.partition("\n")
        return first[len(ROUTE_LABEL) :], rest
    return "", text


def _ledger_row(view: PatrolView, photos: list[Any], tz: str) -> dict[str, Any]:
    route, findings = _split(view.findings)
    return {
        "id": view.id,
        "started": local_time(view.started_at, tz),
        "unit": view.unit_name,
        "who": view.actor_name,
        "route": route,
        "findings": findings,
        "photos": [p.sha256 for p in photos],
    }


def _status_text(row: dict[str, Any]) -> str:
    short = row["required"] - row["done"]
    if row["status"] == "missed":
        return "未完成"
    if short <= 0 or row["status"] == "met":
        return "已完成"
    return f"还差 {short} 次"


def _patrol_page(
    request: Request,
    session: UiSession,
    *,
    typed: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
    message: str = "",
    status_code: int = 200,
    photos_sent: int = 0,
) -> Response:
    """The page; a refused form comes back with *typed*, its *problems* by field and
    how many photos were sent (a browser does not keep a file input's choice)."""
    app = app_of(request)
    tz = app.settings.timezone
    now = app.clock.now()
    viewer = session.person
    units = app.patrols.ledger.units_for(viewer)
    top = min((u["depth"] for u in units), default=0)
    options = [{"code": u["code"], "label": "　" * (u["depth"] - top) + u["name"]} for u in units]
    values = dict(typed or {})
    values.setdefault("unit", units[0]["code"] if len(units) == 1 else "")
    values.setdefault("started", _local_input(now, tz))
    for name in FIELDS:
        values.setdefault(name, "")
    recent = app.patrols.ledger.recent(
        now - dt.timedelta(days=LEDGER_DAYS), viewer=viewer, limit=LEDGER_LIMIT
    )
    photos = app.photos.of_patrols([v.id for v in recent], viewer=viewer)
    periods = app.patrols.obligations.periods(viewer=viewer)
    recorded = _recorded(request, viewer)
    return page(
        request,
        "patrols.html",
        status_code,
        title="巡查",
        units=options,
        typed=values,
        problems=problems or {},
        message=message,
        recorded=recorded,
        max_photos=MAX_PHOTOS,
        photos_sent=photos_sent,
        max_size=_size(app.photos.max_bytes),
        ledger=[_ledger_row(v, photos.get(v.id, []), tz) for v in recent],
        ledger_days=LEDGER_DAYS,
        ledger_limit=LEDGER_LIMIT,
        periods=[
            {**r, "text": _status_text(r), "short": r["done"] < r["required"]}
            for r in periods[:STATUS_LIMIT]
        ],
        more_periods=len(periods) > STATUS_LIMIT,
    )


def _recorded(request: Request, viewer: str) -> str:
    """The patrol ``?recorded=`` names, if the viewer sees it: the notice after posting
    (a link naming another id shows none)."""
    patrol_id = request.query_params.get("recorded", "")[:100]
    if not patrol_id:
        return ""
    try:
        return app_of(request).patrols.ledger.get(patrol_id, viewer=viewer).id
    except (UnknownPatrol, NotPermitted):
        return ""


@router.get("/patrols")
def patrols_page(request: Request) -> Response:
    session = current(request)
    if session is None:
        return to_login(request)
    return _patrol_page(request, session)


# -- recording ---------------------------------------------------------------------


def _started(text: str, now: dt.datetime, tz: str, problems: dict[str, str]) -> dt.datetime | None:
    if not text:
        problems["started"] = "请填写巡查时间"
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        problems["started"] = "请填写日期和时间"
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    try:
        moment.astimezone(dt.UTC)
    except OverflowError:
        problems["started"] = "日期超出范围"
        return None
    if moment > now:
        problems["started"] = "巡查时间不能晚于现在"
        return None
    return moment


def _size(max_bytes: int) -> str:
    """``10 MB``, ``512 KB``: the limit as the form states it."""
    if max_bytes >= 1 << 20:
        return f"{max_bytes / (1 << 20):.3g} MB"
    return f"{max(1, max_bytes // 1024)} KB"


def _photo_problem(name: str, exc: InvalidPhoto, max_size: str) -> str:
    shown = f"“{name}”" if name else "照片"
    if isinstance(exc, PhotoTooLarge):
        return f"{shown}超过 {max_size}，请压缩后再传"
    if isinstance(exc, UnsupportedPhotoType):
        return f"{shown}不是照片（只收 JPEG、PNG、WebP、HEIC）"
    return f"{shown}是空文件"


def _findings(route_note: str, findings: str) -> str | None:
    """The findings text the ledger keeps: the route note as its first line."""
    lines = [f"{ROUTE_LABEL}{route_note}"] if route_note else []
    if findings:
        lines.append(findings)
    return "\n".join(lines) or None


def _check(
    request: Request, session: UiSession, form: PatrolForm
) -> tuple[dict[str, str], dt.datetime | None]:
    """Every problem of the form, by field name, found without writing anything; and
    the time of the patrol, when it could be read."""
    app = app_of(request)
    problems: dict[str, str] = {}
    text = {k: form.text.get(k, "").strip() for k in FIELDS}
    for name, value in text.items():
        if "\x00" in value:
            problems[name] = "含有无效字符"
    unit = text["unit"]
    if not unit:
        problems["unit"] = "请选择网格单元"
    elif unit not in {u["code"] for u in app.patrols.ledger.units_for(session.person)}:
        problems["unit"] = "您不能为这个网格单元记录巡查"
    started = _started(text["started"], app.clock.now(), app.settings.timezone, problems)
    if len(text["route_note"]) > MAX_ROUTE or "\n" in text["route_note"]:
        problems["route_note"] = f"请在一行内填写，不超过 {MAX_ROUTE} 字"
    if len(text["findings"]) > MAX_FINDINGS:
        problems["findings"] = f"不超过 {MAX_FINDINGS} 字"
    if len(form.photos) > MAX_PHOTOS:
        problems["photos"] = f"一次最多上传 {MAX_PHOTOS} 张照片"
    for upload in form.photos:
        try:
            app.photos.check(upload.content)
        except InvalidPhoto as exc:
            max_size = _size(app.photos.max_bytes)
            problems.setdefault("photos", _photo_problem(upload.name, exc, max_size))
    return problems, started


def _field_of(service_field: str) -> str:
    """The form field showing the ledger's problem with *service_field*."""
    if service_field in FIELDS:
        return service_field
    return "started" if service_field == "ended" else "unit"


def _refused(
    request: Request, session: UiSession, form: PatrolForm, problems: dict[str, str]
) -> Response:
    return _patrol_page(
        request,
        session,
        typed={k: form.text.get(k, "") for k in FIELDS},
        problems=problems,
        message="请检查标出的项目，巡查尚未记录。",
        status_code=422,
        photos_sent=len(form.photos),
    )


@router.post("/patrols")
def record_patrol(request: Request, form: PatrolFormDep) -> Response:
    session = current(request)
    if session is None:
        return to_login(request)
    check_csrf(session, form.text.get("csrf"))
    problems, started = _check(request, session, form)
    if problems:
        return _refused(request, session, form, problems)
    app = app_of(request)
    typed = {k: form.text.get(k, "").strip() for k in FIELDS}
    try:  # the patrol and its photos: one record, or none
        view, _ = app.photos.record_with_photos(
            app.patrols.ledger,
            typed["unit"],
            session.person,
            [upload.content for upload in form.photos],
            started=started,
            findings=_findings(typed["route_note"], typed["findings"]),
        )
    except InvalidData as exc:  # checked above: only a race gets here
        refused = {_field_of(k): message_of(str(v)) for k, v in exc.problems.items()}
        return _refused(request, session, form, refused)
    except (NotPermitted, UnknownUnit):  # a role or the unit gone since the check
        return _refused(request, session, form, {"unit": "您不能为这个网格单元记录巡查"})
    return RedirectResponse(f"/ui/patrols?recorded={view.id}", 303)


# -- photos ------------------------------------------------------------------------


@router.get("/photos/{sha256}")
def photo(sha256: Sha256, request: Request) -> Response:
    """A patrol photo for a signed-in person who sees one of its patrols (else 404)."""
    session = current(request)
    if session is None:
        return to_login(request)
    path, media_type = app_of(request).photos.open(sha256, viewer=session.person)
    headers = {
        "ETag": f'"{sha256}"',
        "Cache-Control": "private, max-age=86400",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'",
    }
    return FileResponse(path, media_type=media_type, headers=headers)
