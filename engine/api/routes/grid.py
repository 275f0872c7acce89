"""``/grid/units/{code}``: a unit of the grid, its chain, its children and who holds roles on it.

A viewer sees the units of its own chain: the subtrees it holds roles in, and
their ancestors; any other unit is 404, as if it did not exist.  Contact
details (phones, e-mails, webhooks) are not shown.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from sqlalchemy import select

from engine import grid
from engine.api.auth import PrincipalDep
from engine.api.deps import ServicesDep
from engine.api.schemas import ErrorBody, Unit
from engine.db import read_only
from engine.errors import UnknownUnit
from engine.tables import people, person_roles, units

__all__ = ["router"]

router = APIRouter(tags=["grid"])


def _ref(u: grid.UnitRow) -> dict[str, Any]:
    return {"code": u.code, "name": u.name, "level": u.level}


@router.get(
    "/grid/units/{code}",
    response_model=Unit,
    responses={code: {"model": ErrorBody} for code in (401, 404, 422)},
    summary="A grid unit",
)
def get_unit(
    code: Annotated[str, Path(max_length=200)], services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    with read_only(services.app.engine).connect() as conn:
        unit = grid.get_unit(conn, code)
        on_chain = principal.sees(unit.path) or any(
            path.startswith(unit.path) for _, path in principal.scope
        )
        if not on_chain:
            raise UnknownUnit(code)
        ancestors = grid.chain(conn, code)[1:]
        children = conn.execute(
            select(units.c.code, units.c.name, units.c.level)
            .where(units.c.parent_code == code, units.c.active.is_(True))
            .order_by(units.c.code)
        ).all()
        holders = conn.execute(
            select(people.c.id, people.c.name, people.c.kind, person_roles.c.role)
            .join(person_roles, person_roles.c.person_id == people.c.id)
            .where(
                person_roles.c.unit_code == code,
                person_roles.c.active.is_(True),
                people.c.active.is_(True),
            )
            .order_by(person_roles.c.role, people.c.id)
        ).all()
    return JSONResponse(
        {
            "code": unit.code,
            "name": unit.name,
            "level": unit.level,
            "parent": unit.parent_code,
            "path": unit.path,
            "active": unit.active,
            "chain": [_ref(u) for u in ancestors],
            "children": [{"code": c, "name": n, "level": lv} for c, n, lv in children],
            "roles": [
                {"person": p, "name": n, "kind": k, "role": f"{unit.level}.{r}"}
                for p, n, k, r in holders
            ],
        }
    )
