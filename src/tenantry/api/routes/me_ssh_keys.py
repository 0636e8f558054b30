"""`/api/v1/me/ssh-keys`: the caller's SSH public keys (ed25519, ecdsa, rsa ≥ 2048)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from tenantry.api.deps import CtxDep
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas import Page
from tenantry.api.schemas.ssh_keys import SshKeyCreate, SshKeyOut
from tenantry.services import ssh_keys

router = APIRouter(prefix="/api/v1/me/ssh-keys", tags=["me"], route_class=ApiRoute)


@router.get("", response_model=Page[SshKeyOut])
def list_ssh_keys(
    ctx: CtxDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[SshKeyOut]:
    page = ssh_keys.list_ssh_keys(ctx, limit=limit, cursor=cursor)
    return Page(items=[SshKeyOut.of(k) for k in page.items], next_cursor=page.next_cursor)


@router.post("", response_model=SshKeyOut, status_code=201)
def add_ssh_key(ctx: CtxDep, body: SshKeyCreate) -> SshKeyOut:
    key = ssh_keys.add_ssh_key(ctx, name=body.name, public_key=body.public_key)
    ctx.commit()
    return SshKeyOut.of(key)


@router.get("/{key_id}", response_model=SshKeyOut)
def get_ssh_key(ctx: CtxDep, key_id: uuid.UUID) -> SshKeyOut:
    return SshKeyOut.of(ssh_keys.get_ssh_key(ctx, key_id))


@router.delete("/{key_id}", status_code=204)
def delete_ssh_key(ctx: CtxDep, key_id: uuid.UUID) -> Response:
    ssh_keys.delete_ssh_key(ctx, key_id)
    ctx.commit()
    return Response(status_code=204)
