"""``gengbao patrol photo add|list|verify`` (also ``patrol photos …``): patrol photos,
stored content-addressed under the data folder, and the check that none was altered."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.cli.common import Context, Failure, add_json, emit

__all__ = ["add_commands"]


def add_commands(patrol: Any) -> None:
    """Register under the ``patrol`` command's sub-commands *patrol*."""
    photo = patrol.add_parser(
        "photo", aliases=["photos"], help="patrol photos (content-addressed, tamper-evident)"
    )
    sub = photo.add_subparsers(dest="photo_command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "add",
        help="store a photo of a patrol (JPEG, PNG, WebP, HEIC) and note it in its cases",
    )
    p.add_argument("patrol_id", metavar="PATROL_ID")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--actor", required=True, metavar="PERSON_ID", help="who uploads it")
    add_json(p)
    p.set_defaults(handler=photo_add)

    p = sub.add_parser("list", help="the photos of a patrol")
    p.add_argument("patrol_id", metavar="PATROL_ID")
    p.add_argument("--as", dest="viewer", metavar="PERSON_ID", help="read as this person")
    add_json(p)
    p.set_defaults(handler=photo_list)

    p = sub.add_parser(
        "verify", help="re-hash every stored photo: exit 1 naming any missing or altered file"
    )
    add_json(p)
    p.set_defaults(handler=photo_verify)


def photo_add(args: argparse.Namespace, ctx: Context) -> int:
    path = Path(args.file)
    app = ctx.app(sync=False)
    limit = app.photos.max_bytes
    try:
        with path.open("rb") as f:
            content = f.read(limit + 1)  # one byte more than allowed is enough to refuse
    except OSError as exc:
        raise Failure(f"{path}: cannot read: {exc.strerror or exc}") from exc
    photo = app.photos.add(args.patrol_id, content, args.actor)
    if args.json:
        emit(photo.as_dict())
        return 0
    seen = "stored" if photo.new else "already recorded on this patrol"
    print(f"{photo.sha256}  {photo.media_type}  {photo.bytes} bytes  {seen}")
    for case_id in photo.cases:
        print(f"  noted in the history of {case_id}")
    return 0


def photo_list(args: argparse.Namespace, ctx: Context) -> int:
    from engine.cli.common import viewer_of

    photos = ctx.app(sync=False).photos.of_patrol(args.patrol_id, viewer=viewer_of(args.viewer))
    if args.json:
        emit([p.as_dict() for p in photos])
        return 0
    if not photos:
        print(f"no photos of {args.patrol_id}")
    for p in photos:
        when = ctx.local(p.uploaded_at)
        print(f"{p.sha256}  {p.media_type}  {p.bytes} bytes  {p.uploaded_by}  {when}")
    return 0


def photo_verify(args: argparse.Namespace, ctx: Context) -> int:
    checked, problems = ctx.app(sync=False).photos.verify()
    if args.json:
        emit({"checked": checked, "problems": [p.as_dict() for p in problems]})
    else:
        for p in problems:
            what = "missing" if p.problem == "missing" else f"altered: now hashes to {p.actual}"
            print(f"{p.sha256}  {what}  ({p.path})")
        print(f"{checked} photo(s) checked, {len(problems)} problem(s)")
    return 1 if problems else 0
