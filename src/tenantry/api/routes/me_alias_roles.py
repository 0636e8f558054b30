"""`/api/v1/me/alias-roles`: the permission sets the caller defines for its alias users."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from tenantry.api.deps import CtxDep
from tenantry.api.etags import etag, parse_if_match
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas import Page
from tenantry.api.schemas.alias_roles import AliasRoleCreate, AliasRoleOut, AliasRoleUpdate
from tenantry.services import alias_roles

router = APIRouter(prefix="/api/v1/me/alias-roles", tags=["me"], route_class=ApiRoute)


@router.get("", response_model=Page[AliasRoleOut])
def list_alias_roles(
    ctx: CtxDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[AliasRoleOut]:
    page = alias_roles.list_alias_roles(ctx, limit=limit, cursor=cursor)
    return Page(items=[AliasRoleOut.of(r) for r in page.items], next_cursor=page.next_cursor)


@router.post("", response_model=AliasRoleOut, status_code=201)
def create_alias_role(ctx: CtxDep, body: AliasRoleCreate, response: Response) -> AliasRoleOut:
    view = alias_roles.create_alias_role(
        ctx, name=body.name, permissions=body.permissions, acknowledge_risk=body.acknowledge_risk
    )
    ctx.commit()
    response.headers["ETag"] = etag(view.role.version)
    return AliasRoleOut.of(view.role, view.warnings)


@router.get("/{role_id}", response_model=AliasRoleOut)
def get_alias_role(ctx: CtxDep, role_id: uuid.UUID, response: Response) -> AliasRoleOut:
    role = alias_roles.get_alias_role(ctx, role_id)
    response.headers["ETag"] = etag(role.version)
    return AliasRoleOut.of(role)


@router.patch("/{role_id}", response_model=AliasRoleOut)
def update_alias_role(
    ctx: CtxDep,
    role_id: uuid.UUID,
    body: AliasRoleUpdate,
    response: Response,
    if_match: str | None = Header(default=None, alias="If-Match"),
) -> AliasRoleOut:
    view = alias_roles.update_alias_role(
        ctx,
        role_id,
        body.changes(),
        acknowledge_risk=body.acknowledge_risk,
        if_match=parse_if_match(if_match),
    )
    ctx.commit()
    response.headers["ETag"] = etag(view.role.version)
    return AliasRoleOut.of(view.role, view.warnings)


@router.delete("/{role_id}", status_code=204)
def delete_alias_role(ctx: CtxDep, role_id: uuid.UUID) -> Response:
    alias_roles.delete_alias_role(ctx, role_id)
    ctx.commit()
    return Response(status_code=204)
