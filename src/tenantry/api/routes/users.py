"""`/api/v1/users`: superadmin administration of accounts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from tenantry.api.deps import CtxDep
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas import Page
from tenantry.api.schemas.users import DeletionOut, UserCreate, UserOut, UserTenantOut, UserUpdate
from tenantry.services import tenants, users

router = APIRouter(prefix="/api/v1/users", tags=["users"], route_class=ApiRoute)


@router.get("", response_model=Page[UserOut])
def list_users(
    ctx: CtxDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    email: Annotated[str | None, Query(max_length=320)] = None,
    active: bool | None = None,
    tenant_id: uuid.UUID | None = None,
    deleted: bool = False,
) -> Page[UserOut]:
    page = users.list_users(
        ctx, limit=limit, cursor=cursor, email=email, active=active, tenant_id=tenant_id, deleted=deleted
    )
    return Page(items=[UserOut.of(u) for u in page.items], next_cursor=page.next_cursor)


@router.post("", response_model=UserOut, status_code=201)
def create_user(ctx: CtxDep, body: UserCreate) -> UserOut:
    user = users.create_user(
        ctx,
        email=body.email,
        password=body.password,
        first_name=body.first_name,
        last_name=body.last_name,
        is_superadmin=body.is_superadmin,
    )
    ctx.commit()
    return UserOut.of(user)


@router.get("/{user_id}", response_model=UserOut)
def get_user(ctx: CtxDep, user_id: uuid.UUID) -> UserOut:
    return UserOut.of(users.get_user(ctx, user_id))


@router.patch("/{user_id}", response_model=UserOut)
def update_user(ctx: CtxDep, user_id: uuid.UUID, body: UserUpdate) -> UserOut:
    user = users.update_user(ctx, users.get_user(ctx, user_id), body.changes())
    ctx.commit()
    return UserOut.of(user)


@router.get("/{user_id}/deletion-impact", response_model=dict[str, int])
def user_deletion_impact(ctx: CtxDep, user_id: uuid.UUID) -> dict[str, int]:
    return users.deletion_impact(ctx, users.get_user(ctx, user_id))


@router.delete("/{user_id}", response_model=DeletionOut)
def delete_user(ctx: CtxDep, user_id: uuid.UUID) -> DeletionOut:
    batch = users.delete_user(ctx, users.get_user(ctx, user_id))
    ctx.commit()
    return DeletionOut(deletion_batch_id=batch)


@router.post("/{user_id}/restore", response_model=UserOut)
def restore_user(ctx: CtxDep, user_id: uuid.UUID) -> UserOut:
    user = users.restore_user(ctx, users.get_user(ctx, user_id, deleted=True))
    ctx.commit()
    return UserOut.of(user)


@router.post("/{user_id}/invitation", status_code=204)
def resend_invitation(ctx: CtxDep, user_id: uuid.UUID) -> Response:
    users.resend_invitation(ctx, users.get_user(ctx, user_id))
    ctx.commit()
    return Response(status_code=204)


@router.get("/{user_id}/tenants", response_model=list[UserTenantOut])
def user_tenants(ctx: CtxDep, user_id: uuid.UUID) -> list[UserTenantOut]:
    user = users.get_user(ctx, user_id)
    rows = users.user_tenants(ctx, user.id)
    counts = tenants.counts(ctx.session, [t.id for t, _ in rows])
    return [
        UserTenantOut(
            id=t.id,
            slug=t.slug,
            name=t.name,
            status=t.status,
            access="member",  # the user's memberships, whoever asks
            roles=roles,
            is_default=user.default_tenant_id == t.id,
            member_count=counts[t.id][0],
            resource_count=counts[t.id][1],
        )
        for t, roles in rows
    ]
