"""Patrol photos, content-addressed: evidence that shows when it was changed.

A photo is stored once, under ``data_dir/photos/ab/cdef…`` — the first two hex
digits of its SHA-256 name the folder, the other 62 the file — however many times
and for however many patrols it is uploaded.  Before anything is written the upload
is checked: at most ``photos.max_bytes`` (:class:`~engine.errors.PhotoTooLarge`), and
a JPEG, PNG, WebP or HEIC/HEIF by its first bytes, whatever its name or declared type
says (:class:`~engine.errors.UnsupportedPhotoType`).  Then, in one transaction,
``patrol_photos`` records (patrol, hash, size, type, who, when) and every case the
patrol filed (``patrol_cases``) gets a ``photo`` note in its hash-chained history
naming the patrol and the hash.  The file is written first (to a temporary name,
then renamed: a reader never sees half a photo); a transaction that then fails
leaves at most an unreferenced file, which the next upload of the same bytes uses.

:meth:`PatrolPhotos.verify` re-hashes every recorded file and names each one missing
or whose content no longer has its hash (``gengbao patrol photos verify``).

Reading follows the ledger's rule: a viewer sees the photos of the patrols of the
units it sees (:func:`engine.grid.visibility.visible`); any other photo, like a
patrol it does not see, does not exist for it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, select

from engine.cases.service import CaseService
from engine.clock import Clock
from engine.errors import InvalidPhoto, PhotoTooLarge, UnknownPatrol, UnknownPhoto
from engine.errors import UnsupportedPhotoType as UnsupportedType
from engine.grid import registry as grid
from engine.grid.visibility import ADMIN, Viewer, as_viewer, visible
from engine.store import connection, insert_or_ignore, transaction
from engine.store.db import read_only
from engine.store.tables import patrol_cases, patrol_photos, patrols, units

if TYPE_CHECKING:
    from engine.patrols.ledger import Ledger, PatrolView

__all__ = [
    "MEDIA_TYPES",
    "NOTE_TRIGGER",
    "PatrolPhotos",
    "Photo",
    "PhotoProblem",
    "media_type_of",
]

MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp", "image/heic", "image/heif")
NOTE_TRIGGER = "photo"  # the history entry of a case whose patrol got a photo
SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"}
_HEIF_BRANDS = {b"mif1", b"msf1"}
_CHUNK = 1 << 20


def media_type_of(head: bytes) -> str | None:
    """The media type the first bytes of a file declare, if it is a photo we keep."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIC_BRANDS:
            return "image/heic"
        if brand in _HEIF_BRANDS:
            return "image/heif"
    return None


@dataclass(frozen=True, kw_only=True)
class Photo:
    patrol: str
    sha256: str
    bytes: int
    media_type: str
    uploaded_by: str
    uploaded_at: dt.datetime
    cases: tuple[str, ...] = ()  # the cases whose history got a note (in add's answer)
    new: bool = True  # False: these bytes were already recorded on this patrol

    def as_dict(self) -> dict[str, Any]:
        return {
            "patrol": self.patrol,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "media_type": self.media_type,
            "uploaded_by": self.uploaded_by,
            "uploaded_at": self.uploaded_at.isoformat(),
            "url": f"/photos/{self.sha256}",
            "cases": list(self.cases),
            "new": self.new,
        }


@dataclass(frozen=True, kw_only=True)
class PhotoProblem:
    sha256: str
    problem: str  # missing | altered
    path: str
    actual: str | None = None  # the hash of what the file now holds

    def as_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "problem": self.problem,
            "path": self.path,
            "actual": self.actual,
        }


class PatrolPhotos:
    """The photos of one database, their files in *folder* (``data_dir/photos``)."""

    def __init__(
        self, engine: Engine, clock: Clock, cases: CaseService, folder: Path, max_bytes: int
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.cases = cases
        self.folder = Path(folder)
        self.max_bytes = max_bytes

    def path_of(self, sha256: str) -> Path:
        """Where the photo with this hash lives: ``photos/ab/cdef…``."""
        return self.folder / sha256[:2] / sha256[2:]

    # -- writing ---------------------------------------------------------------
    def add(self, patrol_id: str, content: bytes, actor: str) -> Photo:
        """Store *content* as a photo of the patrol, uploaded by *actor*, who must see the
        patrol (a role on its unit's chain; UnknownPatrol otherwise)."""
        media_type = self.check(content)
        with connection(read_only(self.engine)) as conn:
            self._visible_patrol(conn, patrol_id, actor)
        sha256 = hashlib.sha256(content).hexdigest()
        self._store(sha256, content)
        with transaction(self.engine) as conn:
            self._visible_patrol(conn, patrol_id, actor)
            return self._attach(conn, patrol_id, content, sha256, media_type, actor)

    def record_with_photos(
        self,
        ledger: Ledger,
        unit: str,
        actor: str,
        photos: Sequence[bytes],
        **patrol: Any,
    ) -> tuple[PatrolView, list[Photo]]:
        """Record a patrol (:meth:`Ledger.record` with *patrol*'s fields) and its
        *photos* as one record, or none: every photo is checked and its file stored
        first (a file without a row is harmless: content-addressed, written again by
        the next upload of the same bytes), then the patrol and every photo row commit
        in one transaction.  The page's form; the API adds photos one request each."""
        checked = [(content, self.check(content)) for content in photos]
        hashes = [hashlib.sha256(content).hexdigest() for content, _ in checked]
        for sha256, (content, _) in zip(hashes, checked, strict=True):
            self._store(sha256, content)
        attached: list[Photo] = []

        def attach(conn: Connection, patrol_id: str) -> None:
            for sha256, (content, media_type) in zip(hashes, checked, strict=True):
                attached.append(self._attach(conn, patrol_id, content, sha256, media_type, actor))

        view = ledger.record(unit, actor, within=attach, **patrol)
        return view, attached

    def _attach(
        self,
        conn: Connection,
        patrol_id: str,
        content: bytes,
        sha256: str,
        media_type: str,
        actor: str,
    ) -> Photo:
        """The photo's row, and a note in the history of each case filed from the patrol."""
        now = self.clock.now()
        inserted = conn.execute(
            insert_or_ignore(patrol_photos, conn)
            .values(
                patrol_id=patrol_id,
                sha256=sha256,
                bytes=len(content),
                media_type=media_type,
                uploaded_by=actor,
                uploaded_at=now,
            )
            .returning(patrol_photos.c.sha256)
        ).first()
        if inserted is None:  # the same bytes on the same patrol: recorded already
            row = conn.execute(
                select(patrol_photos).where(
                    patrol_photos.c.patrol_id == patrol_id, patrol_photos.c.sha256 == sha256
                )
            ).one()
            return _photo(row, new=False)
        filed = list(
            conn.execute(
                select(patrol_cases.c.case_id)
                .where(patrol_cases.c.patrol_id == patrol_id)
                .order_by(patrol_cases.c.case_id)
            ).scalars()
        )
        note = {"patrol": patrol_id, "sha256": sha256, "bytes": len(content)}
        for case_id in filed:
            locked = self.cases.lock(conn, case_id)
            self.cases.note(
                conn, locked, NOTE_TRIGGER, {**note, "media_type": media_type}, actor=actor
            )
        return Photo(
            patrol=patrol_id,
            sha256=sha256,
            bytes=len(content),
            media_type=media_type,
            uploaded_by=actor,
            uploaded_at=now,
            cases=tuple(filed),
        )

    def check(self, content: bytes) -> str:
        """The media type of *content* if it may be stored as a photo: at most
        ``max_bytes`` (PhotoTooLarge), not empty (InvalidPhoto), a JPEG, PNG, WebP or
        HEIC/HEIF by its first bytes (UnsupportedPhotoType).  Writes nothing: a form
        with several photos checks them all before recording anything."""
        if len(content) > self.max_bytes:
            raise PhotoTooLarge(len(content), self.max_bytes)
        if not content:
            raise InvalidPhoto("the file is empty", bytes=0)
        media_type = media_type_of(content[:16])
        if media_type is None:
            raise UnsupportedType(("JPEG", "PNG", "WebP", "HEIC"))
        return media_type

    def _store(self, sha256: str, content: bytes) -> None:
        """Write the file unless it is there with the right content (an altered one is
        replaced: the upload is the evidence again)."""
        target = self.path_of(sha256)
        if target.is_file() and _hash_file(target) == sha256:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".upload-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    # -- reading ---------------------------------------------------------------
    def of_patrol(self, patrol_id: str, *, viewer: Viewer | str = ADMIN) -> list[Photo]:
        """The photos of a patrol *viewer* sees, in upload order."""
        with connection(read_only(self.engine)) as conn:
            self._visible_patrol(conn, patrol_id, viewer)
            rows = conn.execute(
                select(patrol_photos)
                .where(patrol_photos.c.patrol_id == patrol_id)
                .order_by(patrol_photos.c.uploaded_at, patrol_photos.c.sha256)
            ).all()
        return [_photo(r) for r in rows]

    def of_patrols(
        self, patrol_ids: Sequence[str], *, viewer: Viewer | str = ADMIN
    ) -> dict[str, list[Photo]]:
        """The photos of each of these patrols that *viewer* sees, in upload order (one
        query per 500 patrols, for a ledger page); a patrol it does not see has none."""
        out: dict[str, list[Photo]] = {}
        p = patrol_photos.c
        with connection(read_only(self.engine)) as conn:
            for start in range(0, len(patrol_ids), 500):
                chunk = list(patrol_ids[start : start + 500])
                rows = conn.execute(
                    select(patrol_photos)
                    .join(patrols, patrols.c.id == p.patrol_id)
                    .join(units, units.c.code == patrols.c.unit_code)
                    .where(p.patrol_id.in_(chunk), visible(viewer, units.c.path))
                    .order_by(p.patrol_id, p.uploaded_at, p.sha256)
                ).all()
                for r in rows:
                    out.setdefault(r.patrol_id, []).append(_photo(r))
        return out

    def open(self, sha256: str, *, viewer: Viewer | str = ADMIN) -> tuple[Path, str]:
        """The file and media type of a photo of a patrol *viewer* sees (UnknownPhoto
        otherwise, or when its file is gone)."""
        if not SHA256.match(sha256):
            raise UnknownPhoto(sha256)
        with connection(read_only(self.engine)) as conn:
            row = conn.execute(
                select(patrol_photos.c.media_type)
                .select_from(
                    patrol_photos.join(patrols, patrols.c.id == patrol_photos.c.patrol_id).join(
                        units, units.c.code == patrols.c.unit_code
                    )
                )
                .where(patrol_photos.c.sha256 == sha256, visible(viewer, units.c.path))
                .limit(1)
            ).first()
        path = self.path_of(sha256)
        if row is None or not path.is_file():
            raise UnknownPhoto(sha256)
        return path, str(row.media_type)

    def verify(self) -> tuple[int, list[PhotoProblem]]:
        """Every recorded photo re-hashed from its file: how many were checked, and those
        missing or altered."""
        with connection(read_only(self.engine)) as conn:
            hashes = list(
                conn.execute(
                    select(patrol_photos.c.sha256).distinct().order_by(patrol_photos.c.sha256)
                ).scalars()
            )
        problems = []
        for sha256 in hashes:
            path = self.path_of(sha256)
            if not path.is_file():
                problems.append(PhotoProblem(sha256=sha256, problem="missing", path=str(path)))
                continue
            actual = _hash_file(path)
            if actual != sha256:
                problems.append(
                    PhotoProblem(sha256=sha256, problem="altered", path=str(path), actual=actual)
                )
        return len(hashes), problems

    def _visible_patrol(self, conn: Connection, patrol_id: str, viewer: Viewer | str) -> None:
        who = as_viewer(viewer)
        if not who.everything:
            grid.get_person(conn, who.actor)  # an unknown actor is named as such
        seen = conn.execute(
            select(patrols.c.id)
            .join(units, units.c.code == patrols.c.unit_code)
            .where(patrols.c.id == patrol_id, visible(who, units.c.path))
        ).first()
        if seen is None:
            raise UnknownPatrol(patrol_id)


def _photo(row: Any, *, new: bool = True) -> Photo:
    return Photo(
        patrol=row.patrol_id,
        sha256=row.sha256,
        bytes=row.bytes,
        media_type=row.media_type,
        uploaded_by=row.uploaded_by,
        uploaded_at=row.uploaded_at,
        new=new,
    )


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
