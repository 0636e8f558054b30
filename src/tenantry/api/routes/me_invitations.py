"""`/api/v1/me/invitations`: tenants asking the caller's account to join, and the answer."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from tenantry.api.deps import CtxDep
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas.membership_invitations import JoinedOut, MyInvitationOut
from tenantry.services import membership_invitations

router = APIRouter(prefix="/api/v1/me/invitations", tags=["me"], route_class=ApiRoute)


@router.get("", response_model=list[MyInvitationOut])
def list_my_invitations(ctx: CtxDep) -> list[MyInvitationOut]:
    return [MyInvitationOut.of(v) for v in membership_invitations.list_mine(ctx)]


@router.post("/{invitation_id}/accept", response_model=JoinedOut)
def accept_invitation(ctx: CtxDep, invitation_id: uuid.UUID) -> JoinedOut:
    joined = membership_invitations.accept(ctx, invitation_id)
    ctx.commit()
    return JoinedOut.of(joined)


@router.post("/{invitation_id}/decline", status_code=204)
def decline_invitation(ctx: CtxDep, invitation_id: uuid.UUID) -> Response:
    membership_invitations.decline(ctx, invitation_id)
    ctx.commit()
    return Response(status_code=204)
