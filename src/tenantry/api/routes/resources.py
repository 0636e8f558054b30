"""`/api/v1/tenants/{tenant}/resources`: typed tenant objects."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from tenantry.api.deps import TenantCtxDep
from tenantry.api.etags import etag, parse_if_match
from tenantry.api.routing import QUERY_PREFIXES, ApiRoute
from tenantry.api.schemas import Page
from tenantry.api.schemas.resources import ResourceCreate, ResourceOut, ResourceUpdate
from tenantry.api.schemas.tenants import ImpactOut
from tenantry.api.schemas.users import DeletionOut
from tenantry.errors import Invalid
from tenantry.services import resources

router = APIRouter(prefix="/api/v1/tenants/{tenant}/resources", tags=["resources"], route_class=ApiRoute)
IfMatch = Annotated[str | None, Header(alias="If-Match")]


@router.get("", response_model=Page[ResourceOut], openapi_extra={QUERY_PREFIXES: ["attr."]})
def list_resources(
    ctx: TenantCtxDep,
    request: Request,
    type: Annotated[str | None, Query(max_length=64)] = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    parent_id: uuid.UUID | None = None,
    sort: Annotated[str, Query(max_length=20)] = "name",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[ResourceOut]:
    """Filter attributes with `attr.<name>=<value>` (exact match on the attribute's text)."""
    attrs = []
    for key, value in request.query_params.multi_items():
        if key.startswith("attr."):
            field = key[5:]
            if not field.replace("_", "").isalnum():
                raise Invalid(f"bad attribute filter {key!r}", code="invalid_filter", field=key)
            attrs.append((field, value))
    flt = resources.ResourceFilter(type=type, name=name, parent_id=parent_id, attributes=tuple(attrs))
    page = resources.list_resources(ctx, flt, limit=limit, cursor=cursor, sort=sort)
    return Page(items=[ResourceOut.of(r) for r in page.items], next_cursor=page.next_cursor)


@router.post("", response_model=ResourceOut, status_code=201)
def create_resource(ctx: TenantCtxDep, body: ResourceCreate, response: Response) -> ResourceOut:
    r = resources.create_resource(
        ctx, type=body.type, name=body.name, attributes=body.attributes, parent_id=body.parent_id
    )
    ctx.commit()
    response.headers["ETag"] = etag(r.version)
    return ResourceOut.of(r)


@router.get("/{resource_id}", response_model=ResourceOut)
def get_resource(ctx: TenantCtxDep, resource_id: uuid.UUID, response: Response) -> ResourceOut:
    r = resources.get_resource(ctx, resource_id)
    response.headers["ETag"] = etag(r.version)
    return ResourceOut.of(r)


@router.patch("/{resource_id}", response_model=ResourceOut)
def update_resource(
    ctx: TenantCtxDep,
    resource_id: uuid.UUID,
    body: ResourceUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> ResourceOut:
    r = resources.update_resource(ctx, resource_id, body.changes(), if_match=parse_if_match(if_match))
    ctx.commit()
    response.headers["ETag"] = etag(r.version)
    return ResourceOut.of(r)


@router.get("/{resource_id}/deletion-impact", response_model=ImpactOut)
def resource_deletion_impact(ctx: TenantCtxDep, resource_id: uuid.UUID) -> ImpactOut:
    return ImpactOut(counts=resources.deletion_impact(ctx, resource_id))


@router.delete("/{resource_id}", response_model=DeletionOut)
def delete_resource(ctx: TenantCtxDep, resource_id: uuid.UUID, if_match: IfMatch = None) -> DeletionOut:
    batch = resources.delete_resource(ctx, resource_id, if_match=parse_if_match(if_match))
    ctx.commit()
    return DeletionOut(deletion_batch_id=batch)
