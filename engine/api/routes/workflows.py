"""``/workflows``: the registered workflows, their versions, definitions and diagrams."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from engine.api.auth import PrincipalDep
from engine.api.deps import ServicesDep
from engine.api.schemas import ErrorBody, WorkflowDetail, WorkflowSummary
from engine.cases.catalog import VersionInfo
from engine.definitions import FieldSpec, StateSpec, TransitionSpec, Workflow
from engine.definitions.diagram import describe_deadline, to_mermaid
from engine.definitions.model import TEXT_TYPES

__all__ = ["definition_dict", "router"]

router = APIRouter(tags=["workflows"])

_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody}, 422: {"model": ErrorBody}}


def _version(v: VersionInfo) -> dict[str, Any]:
    out = v.as_dict()
    out["loaded_at"] = v.loaded_at.isoformat()
    out["activated_at"] = [at.isoformat() for at in v.activated_at]
    return out


def _field(f: FieldSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f.name, "type": f.type, "title": f.title}
    if f.description:
        out["description"] = f.description
    if f.required:
        out["required"] = True
    if f.default is not None:
        out["default"] = f.default
    if f.values:
        out["values"] = list(f.values)
    if f.min is not None:
        out["min"] = f.min
    if f.max is not None:
        out["max"] = f.max
    if f.items is not None:
        out["items"] = f.items
    if f.type in TEXT_TYPES or f.items in TEXT_TYPES:
        out["max_length"] = f.text_limit  # the limit in force, default included
    return out


def _state(s: StateSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": s.name, "title": s.title, "final": s.final}
    if s.description:
        out["description"] = s.description
    if s.deadline is not None:
        out["deadline"] = describe_deadline(s.deadline)
    return out


def _transition(t: TransitionSpec) -> dict[str, Any]:
    return {
        "trigger": t.trigger,
        "from": list(t.sources),
        "to": t.dest,
        "title": t.title,
        "roles": [str(r) for r in t.roles],
        "requires": list(t.requires),
        "payload": [_field(f) for f in t.payload],
        "when": t.when,
        "notify": [str(r) for r in t.notify],
    }


def definition_dict(wf: Workflow) -> dict[str, Any]:
    """The definition as neutral JSON: fields, states, transitions."""
    return {
        "workflow": wf.id,
        "title": wf.title,
        "description": wf.description,
        "initial": wf.initial,
        "roles": [str(r) for r in wf.roles],
        "fields": [_field(f) for f in wf.fields],
        "states": [_state(s) for s in wf.states],
        "transitions": [_transition(t) for t in wf.transitions],
    }


@router.get(
    "/workflows",
    response_model=list[WorkflowSummary],
    responses=_ERRORS,
    summary="Registered workflows and their versions",
)
def list_workflows(services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    versions = services.app.catalog.versions()
    by_name: dict[str, list[VersionInfo]] = {}
    for v in versions:
        by_name.setdefault(v.workflow, []).append(v)
    out = [
        {
            "workflow": name,
            "title": vs[-1].title,
            "latest_version": vs[-1].version,
            "current_version": next((v.version for v in vs if v.current), vs[-1].version),
            "versions": [_version(v) for v in vs],
        }
        for name, vs in sorted(by_name.items())
    ]
    return JSONResponse(out)


@router.get(
    "/workflows/{name}",
    response_model=WorkflowDetail,
    responses={**_ERRORS, 404: {"model": ErrorBody}},
    summary="A workflow: its versions, the definition, its source and a Mermaid diagram",
)
def get_workflow(
    name: Annotated[str, Path(max_length=200)],
    services: ServicesDep,
    principal: PrincipalDep,
    version: Annotated[
        int | None, Query(ge=1, description="default: the current version (new cases get it)")
    ] = None,
) -> JSONResponse:
    found = services.app.catalog.definition(name, version)
    chosen, versions, wf = found.chosen, found.versions, found.workflow
    return JSONResponse(
        {
            "workflow": name,
            "title": chosen.title,
            "version": chosen.version,
            "versions": [_version(v) for v in versions],
            "definition": definition_dict(wf),
            "source": found.source,
            "diagram": {"mermaid": to_mermaid(wf)},
        }
    )
