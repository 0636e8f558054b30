"""`/api/v1/roles` (built-in and global custom) and `/api/v1/tenants/{tenant}/roles`."""

from __future__ import annotations

from fastapi import APIRouter, Header, Response

from tenantry.api.deps import CtxDep, TenantCtxDep
from tenantry.api.etags import parse_if_match
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas.authz import RoleCreate, RoleOut, RoleUpdate
from tenantry.services import roles
from tenantry.services.context import ServiceContext

router = APIRouter(tags=["roles"], route_class=ApiRoute)
GLOBAL = "/api/v1/roles"
TENANT = "/api/v1/tenants/{tenant}/roles"


def _list(ctx: ServiceContext) -> list[RoleOut]:
    return [RoleOut.of(v) for v in roles.list_roles(ctx)]


def _create(ctx: ServiceContext, body: RoleCreate) -> RoleOut:
    view = roles.create_role(
        ctx,
        key=body.key,
        name=body.name,
        description=body.description,
        permissions=body.permissions,
        acknowledge_risk=body.acknowledge_risk,
    )
    ctx.commit()
    return RoleOut.of(view)


def _update(ctx: ServiceContext, key: str, body: RoleUpdate, if_match: str | None) -> RoleOut:
    view = roles.update_role(
        ctx, key, body.changes(), acknowledge_risk=body.acknowledge_risk, if_match=parse_if_match(if_match)
    )
    ctx.commit()
    return RoleOut.of(view)


def _delete(ctx: ServiceContext, key: str) -> Response:
    roles.delete_role(ctx, key)
    ctx.commit()
    return Response(status_code=204)


@router.get(GLOBAL, response_model=list[RoleOut])
def list_roles(ctx: CtxDep) -> list[RoleOut]:
    return _list(ctx)


@router.post(GLOBAL, response_model=RoleOut, status_code=201)
def create_role(ctx: CtxDep, body: RoleCreate) -> RoleOut:
    return _create(ctx, body)


@router.get(GLOBAL + "/{key}", response_model=RoleOut)
def get_role(ctx: CtxDep, key: str) -> RoleOut:
    return RoleOut.of(roles.get_role(ctx, key))


@router.patch(GLOBAL + "/{key}", response_model=RoleOut)
def update_role(
    ctx: CtxDep, key: str, body: RoleUpdate, if_match: str | None = Header(default=None, alias="If-Match")
) -> RoleOut:
    return _update(ctx, key, body, if_match)


@router.delete(GLOBAL + "/{key}", status_code=204)
def delete_role(ctx: CtxDep, key: str) -> Response:
    return _delete(ctx, key)


@router.get(TENANT, response_model=list[RoleOut])
def list_tenant_roles(ctx: TenantCtxDep) -> list[RoleOut]:
    return _list(ctx)


@router.post(TENANT, response_model=RoleOut, status_code=201)
def create_tenant_role(ctx: TenantCtxDep, body: RoleCreate) -> RoleOut:
    return _create(ctx, body)


@router.get(TENANT + "/{key}", response_model=RoleOut)
def get_tenant_role(ctx: TenantCtxDep, key: str) -> RoleOut:
    return RoleOut.of(roles.get_role(ctx, key))


@router.patch(TENANT + "/{key}", response_model=RoleOut)
def update_tenant_role(
    ctx: TenantCtxDep,
    key: str,
    body: RoleUpdate,
    if_match: str | None = Header(default=None, alias="If-Match"),
) -> RoleOut:
    return _update(ctx, key, body, if_match)


@router.delete(TENANT + "/{key}", status_code=204)
def delete_tenant_role(ctx: TenantCtxDep, key: str) -> Response:
    return _delete(ctx, key)
