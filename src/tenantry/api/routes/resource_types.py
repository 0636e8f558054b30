"""`/api/v1/resource-types`: the registry (superadmins write; everyone signed in reads)."""

from __future__ import annotations

from fastapi import APIRouter, Header, Response

from tenantry.api.deps import CtxDep
from tenantry.api.etags import etag, parse_if_match
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas.resources import ResourceTypeCreate, ResourceTypeOut, ResourceTypeUpdate
from tenantry.services import resource_types

router = APIRouter(prefix="/api/v1/resource-types", tags=["resources"], route_class=ApiRoute)


@router.get("", response_model=list[ResourceTypeOut], response_model_by_alias=True)
def list_types(ctx: CtxDep) -> list[ResourceTypeOut]:
    return [ResourceTypeOut.of(t) for t in resource_types.list_types(ctx)]


@router.post("", response_model=ResourceTypeOut, status_code=201, response_model_by_alias=True)
def create_type(ctx: CtxDep, body: ResourceTypeCreate) -> ResourceTypeOut:
    t = resource_types.create_type(
        ctx,
        key=body.key,
        name=body.name,
        schema=body.schema_,
        unique_fields=body.unique_fields,
        parent_type=body.parent_type,
        cascade_delete=body.cascade_delete,
        references=body.references,
    )
    ctx.commit()
    return ResourceTypeOut.of(t)


@router.get("/{key}", response_model=ResourceTypeOut, response_model_by_alias=True)
def get_type(ctx: CtxDep, key: str, response: Response) -> ResourceTypeOut:
    t = resource_types.get_type_visible(ctx, key)
    response.headers["ETag"] = etag(t.version)
    return ResourceTypeOut.of(t)


@router.patch("/{key}", response_model=ResourceTypeOut, response_model_by_alias=True)
def update_type(
    ctx: CtxDep,
    key: str,
    body: ResourceTypeUpdate,
    response: Response,
    if_match: str | None = Header(default=None, alias="If-Match"),
) -> ResourceTypeOut:
    t = resource_types.update_type(ctx, key, body.changes(), if_match=parse_if_match(if_match))
    ctx.commit()
    response.headers["ETag"] = etag(t.version)
    return ResourceTypeOut.of(t)


@router.delete("/{key}", status_code=204)
def delete_type(ctx: CtxDep, key: str) -> Response:
    resource_types.delete_type(ctx, key)
    ctx.commit()
    return Response(status_code=204)
