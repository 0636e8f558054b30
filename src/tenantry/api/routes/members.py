"""`/api/v1/tenants/{tenant}/members`: who works in a tenant, with which role."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from tenantry.api.deps import TenantCtxDep
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas import Page
from tenantry.api.schemas.members import MemberCreate, MemberOut, MemberUpdate
from tenantry.api.schemas.membership_invitations import MemberInvitationOut
from tenantry.services import memberships
from tenantry.services.memberships import MemberView

router = APIRouter(prefix="/api/v1/tenants/{tenant}/members", tags=["members"], route_class=ApiRoute)
# Beside the members, not under them: `/members/invitations` would also read as a member id.
invitations_router = APIRouter(
    prefix="/api/v1/tenants/{tenant}/invitations", tags=["members"], route_class=ApiRoute
)


@router.get("", response_model=Page[MemberOut])
def list_members(
    ctx: TenantCtxDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=320)] = None,
) -> Page[MemberOut]:
    page = memberships.list_members(ctx, limit=limit, cursor=cursor, q=q)
    return Page(items=[MemberOut.of(v) for v in page.items], next_cursor=page.next_cursor)


@router.post(
    "",
    response_model=MemberOut | MemberInvitationOut,
    status_code=201,
    responses={
        201: {"model": MemberOut, "description": "Attached at once (account administrators)"},
        202: {
            "model": MemberInvitationOut,
            "description": "Invited: the account joins when it accepts (the same answer for every address)",
        },
    },
)
def add_member(ctx: TenantCtxDep, body: MemberCreate, response: Response) -> MemberOut | MemberInvitationOut:
    assert ctx.tenant is not None
    result = memberships.add_member(ctx, ctx.tenant, role=body.role, user_id=body.user_id, email=body.email)
    ctx.commit()
    if isinstance(result, MemberView):
        return MemberOut.of(result)
    response.status_code = 202
    return MemberInvitationOut.of(result)


@invitations_router.get("", response_model=Page[MemberInvitationOut])
def list_invitations(
    ctx: TenantCtxDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[MemberInvitationOut]:
    page = memberships.list_invitations(ctx, limit=limit, cursor=cursor)
    return Page(items=[MemberInvitationOut.of(i) for i in page.items], next_cursor=page.next_cursor)


@invitations_router.delete("/{invitation_id}", status_code=204)
def revoke_invitation(ctx: TenantCtxDep, invitation_id: uuid.UUID) -> Response:
    memberships.revoke_invitation(ctx, invitation_id)
    ctx.commit()
    return Response(status_code=204)


@router.get("/{user_id}", response_model=MemberOut)
def get_member(ctx: TenantCtxDep, user_id: uuid.UUID) -> MemberOut:
    return MemberOut.of(memberships.get_member(ctx, user_id))


@router.patch("/{user_id}", response_model=MemberOut)
def update_member(ctx: TenantCtxDep, user_id: uuid.UUID, body: MemberUpdate) -> MemberOut:
    view = None
    if body.role is not None:
        view = memberships.change_member_role(ctx, user_id, role=body.role)
    if body.is_default:
        view = memberships.set_default_tenant(ctx, user_id)
    ctx.commit()
    assert view is not None
    return MemberOut.of(view)


@router.delete("/{user_id}", status_code=204)
def remove_member(ctx: TenantCtxDep, user_id: uuid.UUID) -> Response:
    memberships.remove_member(ctx, user_id)
    ctx.commit()
    return Response(status_code=204)


@router.post("/{user_id}/invitation", status_code=204)
def resend_invitation(ctx: TenantCtxDep, user_id: uuid.UUID) -> Response:
    memberships.resend_invitation(ctx, user_id)
    ctx.commit()
    return Response(status_code=204)
