"""The HTTP API: FastAPI routes over the case service, bearer-token auth, one error shape.

app.py          create_api(app): the FastAPI application (routes, handlers, middleware)
auth.py         Authorization: Bearer TOKEN → the request's principal
deps.py         what routes share (the App, tokens, counters, the loop)
errors.py       the one map from exceptions to statuses and the error body
middleware.py   the body size limit (413) and the URL guard
strict.py       unknown query parameters are errors
options.py      the api: and serve: settings
schemas.py      request and response models (the OpenAPI schema)
metrics.py      Prometheus text for /metrics
serve.py        `gengbao serve`: uvicorn + the timer loop + the dispatcher in one process
routes/         one module per resource
"""

from __future__ import annotations

from engine.api.app import create_api
from engine.api.options import ApiOptions, ServeOptions

__all__ = ["ApiOptions", "ServeOptions", "create_api"]
