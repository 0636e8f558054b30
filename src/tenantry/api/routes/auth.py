"""Sign in and out, forgotten passwords, invitation acceptance."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from tenantry.api.deps import AnonCtxDep, CtxDep, clear_session_cookies, set_session_cookies
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas.auth import AcceptIn, CookieLoginOut, ForgotIn, LoginIn, ResetIn, TokenOut
from tenantry.services import auth, invitations

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], route_class=ApiRoute)


@router.post("/login", response_model=TokenOut)
def login(ctx: AnonCtxDep, body: LoginIn) -> TokenOut:
    issued = auth.login(ctx, email=body.email, password=body.password, totp_code=body.totp_code)
    ctx.commit()
    return TokenOut(
        token=issued.token, expires_at=issued.expires_at, requires_2fa_setup=issued.requires_2fa_setup
    )


@router.post("/session", response_model=CookieLoginOut)
def login_cookie(ctx: AnonCtxDep, body: LoginIn, request: Request, response: Response) -> CookieLoginOut:
    """Cookie variant for the console: HttpOnly session cookie plus a CSRF token."""
    issued = auth.login(ctx, email=body.email, password=body.password, totp_code=body.totp_code, cookie=True)
    ctx.commit()
    assert issued.csrf_token is not None
    set_session_cookies(request, response, issued)
    return CookieLoginOut(
        csrf_token=issued.csrf_token,
        expires_at=issued.expires_at,
        requires_2fa_setup=issued.requires_2fa_setup,
    )


@router.post("/logout", status_code=204)
def logout(ctx: CtxDep) -> Response:
    auth.logout(ctx)
    ctx.commit()
    response = Response(status_code=204)
    clear_session_cookies(response)
    return response


@router.post("/password/forgot", status_code=202)
def forgot_password(ctx: AnonCtxDep, body: ForgotIn) -> dict[str, str]:
    invitations.forgot_password(ctx, email=body.email)
    ctx.commit()
    return {"detail": "if the address has an account, a reset link is on its way"}


@router.post("/password/reset", status_code=204)
def reset_password(ctx: AnonCtxDep, body: ResetIn) -> Response:
    invitations.reset_password(ctx, token=body.token, new_password=body.new_password)
    ctx.commit()
    return Response(status_code=204)


@router.post("/invitations/accept", response_model=TokenOut)
def accept_invitation(ctx: AnonCtxDep, body: AcceptIn) -> TokenOut:
    issued = invitations.accept_invitation(ctx, token=body.token, password=body.password)
    ctx.commit()
    return TokenOut(
        token=issued.token, expires_at=issued.expires_at, requires_2fa_setup=issued.requires_2fa_setup
    )
