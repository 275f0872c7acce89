"""``POST /workflows/{name}/migrations``: move open cases onto another version.

For holders of a role in ``api.admin_roles`` (default ``district.office``), who move
the cases of their units (another unit's cases read as missing): the same service
as ``gengbao workflow migrate`` (:mod:`engine.versions.moves`).  A dry run answers
the plan; a real run moves every listed case or none (409 ``migration_refused``
with each problem); an unknown workflow or version is 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.api.auth import PrincipalDep
from engine.api.deps import ServicesDep
from engine.api.routes.cases import _errors
from engine.api.schemas import Name
from engine.errors import NotPermitted

__all__ = ["router"]

router = APIRouter(tags=["workflows"])

Version = Annotated[int, Field(ge=1, le=2**31 - 1)]


class MigrationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_version: Version = Field(description="the version the cases move onto")
    from_version: Version | None = Field(default=None, description="only cases on this one")
    map: dict[Name, Name] = Field(
        default_factory=dict,
        max_length=200,
        description="old state → new state, for states the new version renamed or dropped",
        examples=[{"checking": "inspecting"}],
    )
    cases: list[Name] | None = Field(
        default=None, min_length=1, max_length=10_000, description="only these cases"
    )
    dry_run: bool = Field(default=False, description="answer the plan; change nothing")
    replay_days: Annotated[int, Field(ge=1, le=3660)] | None = Field(
        default=None,
        description="with dry_run: replay the cases closed in these last days against the "
        "new version's deadlines",
    )

    @model_validator(mode="after")
    def _replay_is_a_dry_run(self) -> MigrationRequest:
        if self.replay_days is not None and not self.dry_run:
            raise ValueError("replay_days needs dry_run: true (a replay only reports)")
        return self


class MigrationTimer(BaseModel):
    kind: str
    rung: int | None
    due: str


class MigrationCase(BaseModel):
    model_config = ConfigDict(extra="allow")
    case: str
    unit: str
    from_version: int
    to_version: int
    state: str
    new_state: str
    deadline: str | None
    new_deadline: str | None
    overdue_at_once: bool
    timers: list[MigrationTimer]
    problems: list[str]


class MigrationAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")
    workflow: str
    to_version: int
    dry_run: bool
    ok: bool
    moved: int
    cases: list[MigrationCase]
    problems: list[dict[str, Any]]
    replay: dict[str, Any] | None = None


@router.post(
    "/workflows/{name}/migrations",
    response_model=MigrationAnswer,
    responses=_errors(403, 404, 409, 413),
    summary="Move open cases onto another version of the workflow (all or none)",
)
def migrate(
    name: Annotated[str, Path(max_length=200)],
    body: MigrationRequest,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSONResponse:
    roles = services.options.admin_roles
    if not services.app.grid.holds_any_role(principal.actor, roles):
        raise NotPermitted(principal.actor, "move cases between workflow versions", "-", roles)
    plan = services.app.version_moves.run(
        name,
        body.to_version,
        from_version=body.from_version,
        state_map=body.map,
        case_ids=body.cases,
        dry_run=body.dry_run,
        replay_days=body.replay_days,
        viewer=principal.viewer,
    )
    return JSONResponse(plan.as_dict())
