"""`/api/v1/grants` (global scope) and `/api/v1/tenants/{tenant}/grants` (tenant and resource scope)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from tenantry.api.deps import CtxDep, TenantCtxDep
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas.authz import GrantCreate, GrantOut
from tenantry.errors import Invalid
from tenantry.services import grants
from tenantry.services.context import ServiceContext

router = APIRouter(tags=["grants"], route_class=ApiRoute)
RoleQ = Annotated[str | None, Query(max_length=100)]


def _create(ctx: ServiceContext, body: GrantCreate) -> GrantOut:
    scope = body.scope
    resource_id = None
    if ctx.tenant is None and scope is not None and scope.type != "global":
        raise Invalid(
            "use /tenants/{tenant}/grants for tenant and resource grants",
            code="invalid_scope",
            field="scope.type",
        )
    if ctx.tenant is not None and scope is not None:
        if scope.type == "global":
            raise Invalid("use /grants for global grants", code="invalid_scope", field="scope.type")
        if scope.type == "resource":
            if scope.resource_id is None:
                raise Invalid(
                    "a resource grant needs scope.resource_id",
                    code="invalid_scope",
                    field="scope.resource_id",
                )
            resource_id = scope.resource_id
    if scope is not None and scope.type != "resource" and scope.resource_id is not None:
        # Contradictory input is refused, never silently reinterpreted.
        raise Invalid(
            f"a {scope.type} grant has no scope.resource_id", code="scope_mismatch", field="scope.resource_id"
        )
    view = grants.create_grant(
        ctx,
        principal_type=body.principal.type,
        principal_id=body.principal.id,
        role=body.role,
        resource_id=resource_id,
        scope_tenant_id=scope.tenant_id if scope is not None else None,
    )
    ctx.commit()
    return GrantOut.of(view)


@router.get("/api/v1/grants", response_model=list[GrantOut])
def list_grants(ctx: CtxDep, principal_id: uuid.UUID | None = None, role: RoleQ = None) -> list[GrantOut]:
    return [GrantOut.of(v) for v in grants.list_grants(ctx, principal_id=principal_id, role=role)]


@router.post("/api/v1/grants", response_model=GrantOut, status_code=201)
def create_grant(ctx: CtxDep, body: GrantCreate) -> GrantOut:
    return _create(ctx, body)


@router.delete("/api/v1/grants/{grant_id}", status_code=204)
def delete_grant(ctx: CtxDep, grant_id: uuid.UUID) -> Response:
    grants.delete_grant(ctx, grant_id)
    ctx.commit()
    return Response(status_code=204)


@router.get("/api/v1/tenants/{tenant}/grants", response_model=list[GrantOut])
def list_tenant_grants(
    ctx: TenantCtxDep,
    principal_id: uuid.UUID | None = None,
    role: RoleQ = None,
    resource_id: uuid.UUID | None = None,
) -> list[GrantOut]:
    return [
        GrantOut.of(v)
        for v in grants.list_grants(ctx, principal_id=principal_id, role=role, resource_id=resource_id)
    ]


@router.post("/api/v1/tenants/{tenant}/grants", response_model=GrantOut, status_code=201)
def create_tenant_grant(ctx: TenantCtxDep, body: GrantCreate) -> GrantOut:
    return _create(ctx, body)


@router.delete("/api/v1/tenants/{tenant}/grants/{grant_id}", status_code=204)
def delete_tenant_grant(ctx: TenantCtxDep, grant_id: uuid.UUID) -> Response:
    grants.delete_grant(ctx, grant_id)
    ctx.commit()
    return Response(status_code=204)
