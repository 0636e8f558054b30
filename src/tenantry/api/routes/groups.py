"""`/api/v1/groups` and `/api/v1/groups/{id}/members`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from tenantry.api.deps import CtxDep
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas.authz import GroupCreate, GroupMemberAdd, GroupMemberOut, GroupOut, GroupUpdate
from tenantry.db.tables import Group
from tenantry.services import groups

router = APIRouter(prefix="/api/v1/groups", tags=["groups"], route_class=ApiRoute)


def _out(g: Group) -> GroupOut:
    return GroupOut(id=g.id, name=g.name, description=g.description)


@router.get("", response_model=list[GroupOut])
def list_groups(ctx: CtxDep) -> list[GroupOut]:
    return [_out(g) for g in groups.list_groups(ctx)]


@router.post("", response_model=GroupOut, status_code=201)
def create_group(ctx: CtxDep, body: GroupCreate) -> GroupOut:
    group = groups.create_group(ctx, name=body.name, description=body.description)
    ctx.commit()
    return _out(group)


@router.get("/{group_id}", response_model=GroupOut)
def get_group(ctx: CtxDep, group_id: uuid.UUID) -> GroupOut:
    return _out(groups.get_group(ctx, group_id))


@router.patch("/{group_id}", response_model=GroupOut)
def update_group(ctx: CtxDep, group_id: uuid.UUID, body: GroupUpdate) -> GroupOut:
    group = groups.update_group(
        ctx, groups.get_group(ctx, group_id), name=body.name, description=body.description
    )
    ctx.commit()
    return _out(group)


@router.delete("/{group_id}", status_code=204)
def delete_group(ctx: CtxDep, group_id: uuid.UUID) -> Response:
    groups.delete_group(ctx, groups.get_group(ctx, group_id))
    ctx.commit()
    return Response(status_code=204)


@router.get("/{group_id}/members", response_model=list[GroupMemberOut])
def list_group_members(ctx: CtxDep, group_id: uuid.UUID) -> list[GroupMemberOut]:
    return [
        GroupMemberOut(user_id=u.id, email=u.email)
        for u in groups.list_group_members(ctx, groups.get_group(ctx, group_id))
    ]


@router.post("/{group_id}/members", response_model=GroupMemberOut, status_code=201)
def add_group_member(ctx: CtxDep, group_id: uuid.UUID, body: GroupMemberAdd) -> GroupMemberOut:
    user = groups.add_group_member(ctx, groups.get_group(ctx, group_id), user_id=body.user_id)
    ctx.commit()
    return GroupMemberOut(user_id=user.id, email=user.email)


@router.delete("/{group_id}/members/{user_id}", status_code=204)
def remove_group_member(ctx: CtxDep, group_id: uuid.UUID, user_id: uuid.UUID) -> Response:
    groups.remove_group_member(ctx, groups.get_group(ctx, group_id), user_id=user_id)
    ctx.commit()
    return Response(status_code=204)
