"""`/api/v1/tenants`: list, create, get, update (PATCH) or replace (PUT), delete (to the trash), restore."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from tenantry.api.deps import CtxDep, TenantCtxDep
from tenantry.api.etags import etag, parse_if_match
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas import Page
from tenantry.api.schemas.tenants import (
    DeletionOut,
    ImpactOut,
    TenantCreate,
    TenantOut,
    TenantReplace,
    TenantUpdate,
)
from tenantry.services import tenants

router = APIRouter(prefix="/api/v1/tenants", tags=["tenants"], route_class=ApiRoute)
IfMatch = Annotated[str | None, Header(alias="If-Match")]


@router.get("", response_model=Page[TenantOut])
def list_tenants(
    ctx: CtxDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[str | None, Query(pattern="^(active|suspended)$")] = None,
) -> Page[TenantOut]:
    page = tenants.list_tenants(ctx, limit=limit, cursor=cursor, q=q, status=status)
    return Page(items=[TenantOut.of(v) for v in page.items], next_cursor=page.next_cursor)


@router.post("", response_model=TenantOut, status_code=201)
def create_tenant(ctx: CtxDep, body: TenantCreate, response: Response) -> TenantOut:
    branding = body.branding
    tenant = tenants.create_tenant(
        ctx,
        slug=body.slug,
        name=body.name,
        description=body.description,
        branding_color=branding.color if branding else None,
        branding_logo_url=branding.logo_url if branding else None,
        status=body.status,
    )
    ctx.commit()
    response.headers["ETag"] = etag(tenant.version)
    response.headers["Location"] = f"/api/v1/tenants/{tenant.slug}"
    return TenantOut.of(tenants.view(ctx, tenant))


@router.get("/{tenant}", response_model=TenantOut)
def get_tenant(ctx: TenantCtxDep, response: Response) -> TenantOut:
    assert ctx.tenant is not None
    response.headers["ETag"] = etag(ctx.tenant.version)
    return TenantOut.of(tenants.view(ctx, ctx.tenant))


@router.patch("/{tenant}", response_model=TenantOut)
def update_tenant(
    ctx: TenantCtxDep, body: TenantUpdate, response: Response, if_match: IfMatch = None
) -> TenantOut:
    assert ctx.tenant is not None
    tenant = tenants.update_tenant(ctx, ctx.tenant, body.changes(), if_match=parse_if_match(if_match))
    ctx.commit()
    response.headers["ETag"] = etag(tenant.version)
    return TenantOut.of(tenants.view(ctx, tenant))


@router.put("/{tenant}", response_model=TenantOut)
def replace_tenant(
    ctx: TenantCtxDep, body: TenantReplace, response: Response, if_match: IfMatch = None
) -> TenantOut:
    """Full update: the same rules, permission and audit as PATCH, with every field given."""
    assert ctx.tenant is not None
    tenant = tenants.update_tenant(ctx, ctx.tenant, body.changes(), if_match=parse_if_match(if_match))
    ctx.commit()
    response.headers["ETag"] = etag(tenant.version)
    return TenantOut.of(tenants.view(ctx, tenant))


@router.get("/{tenant}/deletion-impact", response_model=ImpactOut)
def deletion_impact(ctx: TenantCtxDep) -> ImpactOut:
    assert ctx.tenant is not None
    return ImpactOut(counts=tenants.deletion_impact(ctx, ctx.tenant))


@router.delete("/{tenant}", response_model=DeletionOut)
def delete_tenant(ctx: TenantCtxDep, if_match: IfMatch = None) -> DeletionOut:
    assert ctx.tenant is not None
    batch, impact = tenants.delete_tenant(ctx, ctx.tenant, if_match=parse_if_match(if_match))
    ctx.commit()
    return DeletionOut(deletion_batch_id=batch, counts=impact)


@router.post("/{tenant}/restore", response_model=TenantOut)
def restore_tenant(ctx: CtxDep, tenant: str, response: Response) -> TenantOut:
    restored = tenants.restore_tenant(ctx, tenants.find_deleted(ctx, tenant))
    ctx.commit()
    response.headers["ETag"] = etag(restored.version)
    return TenantOut.of(tenants.view(ctx, restored))
