"""Patrol photos: ``POST /patrols/{id}/photos`` (multipart upload, field ``file``),
``GET /patrols/{id}/photos`` and ``GET /photos/{sha256}``.

The uploader is the token's actor, who must see the patrol (a role on its unit's
chain); a patrol or photo the caller does not see answers 404.  The size limit is
``photos.max_bytes`` (413 ``photo_too_large``); the type is read from the file's
first bytes, whatever the part's declared type says (415 ``unsupported_photo_type``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, File, Path, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from engine.api.auth import PrincipalDep
from engine.api.deps import ServicesDep
from engine.api.photo_schemas import PatrolPhoto
from engine.api.routes.patrols import PatrolId
from engine.api.schemas import ErrorBody
from engine.patrols.photos import MEDIA_TYPES

__all__ = ["MULTIPART_SLACK", "PHOTO_UPLOAD", "router"]

router = APIRouter(tags=["patrols"])

PHOTO_UPLOAD = re.compile(r"/patrols/[^/]+/photos")  # its own body limit (engine/api/app.py)
MULTIPART_SLACK = 64 * 1024  # the multipart framing around the photo's bytes
Sha256 = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the photo")]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in (401, 422, *codes)}


@router.post(
    "/patrols/{patrol_id}/photos",
    status_code=201,
    response_model=PatrolPhoto,
    responses=_errors(404, 413, 415),
    summary="Upload a photo of a patrol (JPEG, PNG, WebP, HEIC), stored by its SHA-256",
    description="Multipart form data with the photo in the field `file`. The same bytes "
    "again are stored once (201 with `new: false`). Every case the patrol filed gets a "
    "`photo` note in its history.",
)
def upload_photo(
    patrol_id: PatrolId,
    file: Annotated[UploadFile, File(description="the photo")],
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    photos = services.app.photos
    content = file.file.read(photos.max_bytes + 1)  # one byte more than allowed: refused
    photo = photos.add(patrol_id, content, principal.actor)
    return JSONResponse(photo.as_dict(), status_code=201)


@router.get(
    "/patrols/{patrol_id}/photos",
    response_model=list[PatrolPhoto],
    responses=_errors(404),
    summary="The photos of a patrol, in upload order",
)
def list_photos(
    patrol_id: PatrolId, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    photos = services.app.photos.of_patrol(patrol_id, viewer=principal.viewer)
    return JSONResponse([p.as_dict() for p in photos])


@router.get(
    "/photos/{sha256}",
    response_class=FileResponse,
    responses={
        200: {
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in MEDIA_TYPES},
            "description": "the photo's bytes",
        },
        **_errors(404),
    },
    summary="A patrol photo, for whoever sees one of the patrols it belongs to",
)
def get_photo(sha256: Sha256, services: ServicesDep, principal: PrincipalDep) -> FileResponse:
    path, media_type = services.app.photos.open(sha256, viewer=principal.viewer)
    headers = {
        "ETag": f'"{sha256}"',
        "Cache-Control": "private, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
    }
    return FileResponse(path, media_type=media_type, headers=headers)
