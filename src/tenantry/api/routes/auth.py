"""Sign in and out."""

from __future__ import annotations

from fastapi import APIRouter, Response

from tenantry.api.deps import AnonCtxDep, CtxDep
from tenantry.api.schemas.auth import LoginIn, TokenOut
from tenantry.services import auth

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/login", response_model=TokenOut)
def login(ctx: AnonCtxDep, body: LoginIn) -> TokenOut:
    issued = auth.login(ctx, email=body.email, password=body.password)
    ctx.commit()
    return TokenOut(token=issued.token, expires_at=issued.expires_at)


@router.post("/logout", status_code=204)
def logout(ctx: CtxDep) -> Response:
    auth.logout(ctx)
    ctx.commit()
    return Response(status_code=204)
