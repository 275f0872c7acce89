"""Property-based: schemathesis drives every operation of ``/openapi.json`` with generated
requests against a real ``gengbao serve``; no answer may be a 5xx, or break the schema.

The caller is a district office account (it sees every case and may open
them), so generated bodies reach the engine's own checks, not just the token's.

Every check of schemathesis runs but ``positive_data_acceptance`` (and a refusal of
negative data may be 413, see :data:`REFUSALS`): a body can
match the schema and still be refused with 422, because what a case's data
and an event's payload must hold is declared by the workflow file (field
types, required payload), which the OpenAPI schema cannot know.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.schemas import BaseSchema

from tests.support.api_server import CONTRACT_ROUTES, ApiServer
from tests.support.properties import examples

ACTOR = "p-ddk-office1"


@pytest.fixture(scope="module")
def token(server: ApiServer) -> str:
    return server.token(ACTOR, "schemathesis")


# A request the schema forbids must be refused with a 4xx; schemathesis' default list
# lacks 413, which is the right answer to a body over the server's size limit (an
# oversized batch or note is refused before it is read).
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": [*REFUSALS, "5xx"]}}}
)


@pytest.fixture(scope="module")
def api_schema(server: ApiServer) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{server.base_url}/openapi.json", config=CONFIG)


OPERATIONS = CONTRACT_ROUTES


# No parameters, no body (and the token is fixed): nothing a request could get wrong.
WITHOUT_INPUT = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/workflows"),
    ("GET", "/metrics"),
}
RUNS = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (mode is GenerationMode.NEGATIVE and (method, path) in WITHOUT_INPUT)
]


@pytest.mark.parametrize(
    ("method", "path", "mode"), RUNS, ids=[f"{m} {p} {mode.value}" for m, p, mode in RUNS]
)
def test_no_5xx_and_no_answer_outside_the_schema(
    api_schema: BaseSchema, token: str, method: str, path: str, mode: GenerationMode
) -> None:
    """Positive: requests the schema allows; negative: requests it forbids (those must be 4xx)."""
    operation = api_schema[path][method]
    headers = {"Authorization": f"Bearer {token}"}

    @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
    @settings(max_examples=examples(50), deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    check()
