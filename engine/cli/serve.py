"""``gengbao serve``: the HTTP API, the timer loop and the dispatcher in one process."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from typing import Any

from engine.cli.common import Context

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    p = commands.add_parser(
        "serve", help="run the HTTP API, the timer loop and the notification dispatcher"
    )
    p.add_argument("--host", help="address to listen on (default: serve.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default: serve.port, 8000)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes accepting on the port (default 1; above 1 needs PostgreSQL)",
    )
    p.add_argument(
        "--no-access-log", dest="access_log", action="store_false", help="do not log each request"
    )
    p.set_defaults(handler=serve)


def serve(args: argparse.Namespace, ctx: Context) -> int:
    from engine.api.options import ServeOptions
    from engine.api.serve import serve as run

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    for name in ("engine", "notifications", "uvicorn"):  # not every library's chatter
        logging.getLogger(name).setLevel(logging.INFO)
    app = ctx.app(sync=False)
    options = ServeOptions.from_settings(app.settings)
    overrides = {"host": args.host, "port": args.port}
    options = dataclasses.replace(options, **{k: v for k, v in overrides.items() if v is not None})
    return run(app, options, access_log=args.access_log, workers=args.workers)
