"""`/api/v1/impersonation`: start acting as another user (a token of its own), and end it."""

from __future__ import annotations

from fastapi import APIRouter, Response

from tenantry.api.deps import CtxDep
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas.impersonation import ImpersonationOut, ImpersonationStart
from tenantry.services import impersonation

router = APIRouter(prefix="/api/v1/impersonation", tags=["impersonation"], route_class=ApiRoute)


@router.post("", response_model=ImpersonationOut, status_code=201)
def start_impersonation(ctx: CtxDep, body: ImpersonationStart) -> ImpersonationOut:
    """Send the returned token as `Authorization: Bearer …` to act as the user until it ends."""
    issued = impersonation.start(
        ctx, user_id=body.user_id, reason=body.reason, minutes=body.minutes, read_only=body.read_only
    )
    ctx.commit()
    return ImpersonationOut(token=issued.token, expires_at=issued.expires_at)


@router.delete("", status_code=204)
def end_impersonation(ctx: CtxDep) -> Response:
    """Under the impersonation token: end it (the token dies at once)."""
    impersonation.end(ctx)
    ctx.commit()
    return Response(status_code=204)
