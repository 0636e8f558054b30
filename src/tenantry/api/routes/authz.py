"""`POST /api/v1/authz/explain`: why a user may or may not do something."""

from __future__ import annotations

from fastapi import APIRouter

from tenantry.api.deps import CtxDep
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas.authz import (
    ExplainAliasOut,
    ExplainGrantOut,
    ExplainIn,
    ExplainOut,
    ScopeOut,
)
from tenantry.authz.engine import GrantFact
from tenantry.services import authz as authz_service
from tenantry.services import tenants

router = APIRouter(prefix="/api/v1/authz", tags=["authorization"], route_class=ApiRoute)


@router.post("/explain", response_model=ExplainOut)
def explain(ctx: CtxDep, body: ExplainIn) -> ExplainOut:
    if body.tenant is not None:
        tenants.enter_tenant(ctx, body.tenant)
    result = authz_service.explain(
        ctx, user_id=body.user_id, permission=body.permission, resource_id=body.resource
    )
    halves = result.alias
    return ExplainOut(
        allowed=result.allowed,
        grants=_grants(result.grants),
        reasons=result.reasons,
        alias=None
        if halves is None
        else ExplainAliasOut(
            parent_id=halves.parent_id,
            role_allows=halves.role_allows,
            parent_holds=halves.parent_holds,
            parent_grants=_grants(halves.parent_grants),
            restricted_to_resources=halves.restricted_to_resources,
        ),
    )


def _grants(grants: list[GrantFact]) -> list[ExplainGrantOut]:
    return [
        ExplainGrantOut(
            role=g.role,
            scope=ScopeOut(type=g.scope, tenant_id=g.tenant_id, resource_id=g.resource_id),
            via_group=g.via_group,
        )
        for g in grants
    ]
