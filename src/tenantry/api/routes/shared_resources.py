"""`/api/v1/shared-resources` (superadmins) and the tenants' read-only view."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from tenantry.api.deps import CtxDep, TenantCtxDep
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas import Page
from tenantry.api.schemas.resources import (
    AssignmentIn,
    SharedResourceCreate,
    SharedResourceOut,
    SharedResourceUpdate,
)
from tenantry.authz import Perm
from tenantry.db.tables import SharedResource
from tenantry.services import shared_resources as shared
from tenantry.services.context import ServiceContext

router = APIRouter(tags=["shared resources"], route_class=ApiRoute)
ADMIN = "/api/v1/shared-resources"
TENANT = "/api/v1/tenants/{tenant}/shared-resources"


def _out(ctx: ServiceContext, items: list[SharedResource]) -> list[SharedResourceOut]:
    if ctx.tenant is not None:  # a tenant sees its own slot only, never the other tenants
        return [SharedResourceOut.of(s, [ctx.tenant.id]) for s in items]
    assigned = shared.assignments(ctx, [s.id for s in items])
    return [SharedResourceOut.of(s, assigned[s.id]) for s in items]


Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=500)]


def _page(ctx: ServiceContext, limit: int, cursor: str | None) -> Page[SharedResourceOut]:
    page = shared.list_shared(ctx, limit=limit, cursor=cursor)
    return Page(items=_out(ctx, page.items), next_cursor=page.next_cursor)


@router.get(ADMIN, response_model=Page[SharedResourceOut])
def list_shared(ctx: CtxDep, limit: Limit = 50, cursor: Cursor = None) -> Page[SharedResourceOut]:
    return _page(ctx, limit, cursor)


@router.post(ADMIN, response_model=SharedResourceOut, status_code=201)
def create_shared(ctx: CtxDep, body: SharedResourceCreate) -> SharedResourceOut:
    s = shared.create_shared(
        ctx,
        name=body.name,
        type=body.type,
        status=body.status,
        capacity=body.capacity,
        attributes=body.attributes,
    )
    ctx.commit()
    return _out(ctx, [s])[0]


@router.get(ADMIN + "/{shared_id}", response_model=SharedResourceOut)
def get_shared(ctx: CtxDep, shared_id: uuid.UUID) -> SharedResourceOut:
    return _out(ctx, [shared.get_shared(ctx, shared_id)])[0]


@router.patch(ADMIN + "/{shared_id}", response_model=SharedResourceOut)
def update_shared(ctx: CtxDep, shared_id: uuid.UUID, body: SharedResourceUpdate) -> SharedResourceOut:
    s = shared.update_shared(ctx, shared.get_shared(ctx, shared_id), body.changes())
    ctx.commit()
    return _out(ctx, [s])[0]


@router.delete(ADMIN + "/{shared_id}", status_code=204)
def delete_shared(ctx: CtxDep, shared_id: uuid.UUID) -> Response:
    shared.delete_shared(ctx, shared.get_shared(ctx, shared_id))
    ctx.commit()
    return Response(status_code=204)


@router.post(ADMIN + "/{shared_id}/assignments", response_model=SharedResourceOut, status_code=201)
def assign_tenant(ctx: CtxDep, shared_id: uuid.UUID, body: AssignmentIn) -> SharedResourceOut:
    s = shared.get_shared(ctx, shared_id)
    shared.assign(ctx, s, tenant_id=body.tenant_id)
    ctx.commit()
    return _out(ctx, [s])[0]


@router.delete(ADMIN + "/{shared_id}/assignments/{tenant_id}", status_code=204)
def unassign_tenant(ctx: CtxDep, shared_id: uuid.UUID, tenant_id: uuid.UUID) -> Response:
    shared.unassign(ctx, shared.get_shared(ctx, shared_id), tenant_id=tenant_id)
    ctx.commit()
    return Response(status_code=204)


@router.get(TENANT, response_model=Page[SharedResourceOut])
def list_tenant_shared(
    ctx: TenantCtxDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[SharedResourceOut]:
    return _page(ctx, limit, cursor)


@router.get(TENANT + "/{shared_id}", response_model=SharedResourceOut)
def get_tenant_shared(ctx: TenantCtxDep, shared_id: uuid.UUID) -> SharedResourceOut:
    return _out(ctx, [shared.get_shared(ctx, shared_id)])[0]


# Documented, so that clients (and contract tests) learn the answer: always 403 for tenants.
_READ_ONLY = "Refused: the tenant's view of shared resources is read-only"


@router.api_route(TENANT, methods=["POST"], summary=_READ_ONLY, status_code=403)
def write_tenant_shared(ctx: TenantCtxDep) -> None:
    """Read-only for tenants: writes are a permission question (403), answered by the engine."""
    ctx.require(Perm.SHARED_RESOURCE_MANAGE, global_scope=True)


def write_tenant_shared_one(ctx: TenantCtxDep, shared_id: uuid.UUID) -> None:
    write_tenant_shared(ctx)


for _method in ("PUT", "PATCH", "DELETE"):  # one operation id per method keeps the OpenAPI unique
    router.add_api_route(
        TENANT + "/{shared_id}",
        write_tenant_shared_one,
        methods=[_method],
        summary=_READ_ONLY,
        status_code=403,
        operation_id=f"write_tenant_shared_one_{_method.lower()}",
    )
