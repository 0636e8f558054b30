"""`/api/v1/me/aliases`: the caller's alias users, and their SSH keys."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from tenantry.api.deps import CtxDep
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas import Page
from tenantry.api.schemas.aliases import AliasCreate, AliasOut, AliasUpdate
from tenantry.api.schemas.ssh_keys import SshKeyCreate, SshKeyOut
from tenantry.services import aliases

router = APIRouter(prefix="/api/v1/me/aliases", tags=["me"], route_class=ApiRoute)


@router.get("", response_model=Page[AliasOut])
def list_aliases(
    ctx: CtxDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[AliasOut]:
    page = aliases.list_aliases(ctx, limit=limit, cursor=cursor)
    return Page(items=[AliasOut.of(v) for v in page.items], next_cursor=page.next_cursor)


@router.post("", response_model=AliasOut, status_code=201)
def create_alias(ctx: CtxDep, body: AliasCreate) -> AliasOut:
    view = aliases.create_alias(
        ctx,
        email=body.email,
        password=body.password,
        first_name=body.first_name,
        last_name=body.last_name,
        role_id=body.role_id,
        resource_ids=body.resource_ids,
    )
    ctx.commit()
    return AliasOut.of(view)


@router.get("/{alias_id}", response_model=AliasOut)
def get_alias(ctx: CtxDep, alias_id: uuid.UUID) -> AliasOut:
    return AliasOut.of(aliases.get_alias(ctx, alias_id))


@router.patch("/{alias_id}", response_model=AliasOut)
def update_alias(ctx: CtxDep, alias_id: uuid.UUID, body: AliasUpdate) -> AliasOut:
    view = aliases.update_alias(ctx, alias_id, body.changes())
    ctx.commit()
    return AliasOut.of(view)


@router.delete("/{alias_id}", status_code=204)
def delete_alias(ctx: CtxDep, alias_id: uuid.UUID) -> Response:
    aliases.delete_alias(ctx, alias_id)
    ctx.commit()
    return Response(status_code=204)


@router.get("/{alias_id}/ssh-keys", response_model=Page[SshKeyOut])
def list_alias_ssh_keys(
    ctx: CtxDep,
    alias_id: uuid.UUID,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[SshKeyOut]:
    page = aliases.list_alias_ssh_keys(ctx, alias_id, limit=limit, cursor=cursor)
    return Page(items=[SshKeyOut.of(k) for k in page.items], next_cursor=page.next_cursor)


@router.post("/{alias_id}/ssh-keys", response_model=SshKeyOut, status_code=201)
def add_alias_ssh_key(ctx: CtxDep, alias_id: uuid.UUID, body: SshKeyCreate) -> SshKeyOut:
    key = aliases.add_alias_ssh_key(ctx, alias_id, name=body.name, public_key=body.public_key)
    ctx.commit()
    return SshKeyOut.of(key)


@router.delete("/{alias_id}/ssh-keys/{key_id}", status_code=204)
def delete_alias_ssh_key(ctx: CtxDep, alias_id: uuid.UUID, key_id: uuid.UUID) -> Response:
    aliases.delete_alias_ssh_key(ctx, alias_id, key_id)
    ctx.commit()
    return Response(status_code=204)
