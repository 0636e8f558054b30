"""`/api/v1/me`: one's own profile, password, 2FA, API keys, sessions and tenants."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from tenantry.api.deps import CtxDep
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas.auth import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    CodeIn,
    RecoveryCodesOut,
    SessionOut,
    TotpDisableIn,
    TotpSetupOut,
)
from tenantry.api.schemas.users import ImpersonatedBy, MeOut, MeUpdate, PasswordChange, UserTenantOut
from tenantry.db.tables import ApiKey
from tenantry.services import api_keys, auth, impersonation, invitations, memberships, totp, users

router = APIRouter(prefix="/api/v1/me", tags=["me"], route_class=ApiRoute)


def _key_out(k: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=k.id,
        name=k.name,
        prefix=k.prefix,
        scope=k.scope,
        tenant_id=k.tenant_id,
        created_at=k.created_at,
        expires_at=k.expires_at,
        last_used_at=k.last_used_at,
    )


@router.get("", response_model=MeOut)
def get_me(ctx: CtxDep) -> MeOut:
    user = users.me(ctx)
    real = impersonation.impersonated_by(ctx)
    return MeOut.of(user, ImpersonatedBy(id=real.id, email=real.email) if real else None)


@router.patch("", response_model=MeOut)
def update_me(ctx: CtxDep, body: MeUpdate) -> MeOut:
    user = users.update_me(ctx, body.changes())
    ctx.commit()
    return MeOut.of(user)


@router.post("/password", status_code=204)
def change_password(ctx: CtxDep, body: PasswordChange) -> Response:
    invitations.change_password(ctx, current_password=body.current_password, new_password=body.new_password)
    ctx.commit()
    return Response(status_code=204)


@router.get("/tenants", response_model=list[UserTenantOut])
def my_tenants(ctx: CtxDep) -> list[UserTenantOut]:
    return [
        UserTenantOut(
            id=row.view.tenant.id,
            slug=row.view.tenant.slug,
            name=row.view.tenant.name,
            status=row.view.tenant.status,
            access=row.access,
            roles=row.roles,
            is_default=row.is_default,
            member_count=row.view.member_count,
            resource_count=row.view.resource_count,
        )
        for row in memberships.my_tenants(ctx)
    ]


@router.get("/sessions", response_model=list[SessionOut])
def list_sessions(ctx: CtxDep) -> list[SessionOut]:
    return [
        SessionOut(
            id=s.id,
            created_at=s.created_at,
            last_seen_at=s.last_seen_at,
            expires_at=min(s.expires_at, s.idle_expires_at),
            ip=s.ip,
            user_agent=s.user_agent,
            current=s.id == ctx.principal.session_id,
        )
        for s in auth.list_sessions(ctx)
    ]


@router.delete("/sessions/{session_id}", status_code=204)
def revoke_session(ctx: CtxDep, session_id: uuid.UUID) -> Response:
    auth.revoke_session(ctx, session_id)
    ctx.commit()
    return Response(status_code=204)


@router.delete("/sessions", status_code=204)
def revoke_all_sessions(ctx: CtxDep) -> Response:
    """Sign out everywhere, this session included."""
    auth.revoke_all_sessions(ctx)
    ctx.commit()
    return Response(status_code=204)


@router.get("/api-keys", response_model=list[ApiKeyOut])
def list_api_keys(ctx: CtxDep) -> list[ApiKeyOut]:
    return [_key_out(k) for k in api_keys.list_keys(ctx)]


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=201)
def create_api_key(ctx: CtxDep, body: ApiKeyCreate) -> ApiKeyCreated:
    created = api_keys.create_key(
        ctx, name=body.name, scope=body.scope, expires_at=body.expires_at, tenant_id=body.tenant_id
    )
    ctx.commit()
    return ApiKeyCreated(**_key_out(created.key).model_dump(), token=created.token)


@router.delete("/api-keys/{key_id}", status_code=204)
def revoke_api_key(ctx: CtxDep, key_id: uuid.UUID) -> Response:
    api_keys.revoke_key(ctx, key_id)
    ctx.commit()
    return Response(status_code=204)


@router.post("/2fa/setup", response_model=TotpSetupOut)
def start_2fa_setup(ctx: CtxDep) -> TotpSetupOut:
    setup = totp.start_setup(ctx)
    ctx.commit()
    return TotpSetupOut(secret=setup.secret, otpauth_uri=setup.otpauth_uri, qr_svg=setup.qr_svg)


@router.post("/2fa/enable", response_model=RecoveryCodesOut)
def enable_2fa(ctx: CtxDep, body: CodeIn) -> RecoveryCodesOut:
    codes = totp.enable(ctx, code=body.code)
    ctx.commit()
    return RecoveryCodesOut(recovery_codes=codes)


@router.post("/2fa/recovery-codes", response_model=RecoveryCodesOut)
def regenerate_recovery_codes(ctx: CtxDep, body: CodeIn) -> RecoveryCodesOut:
    codes = totp.regenerate_recovery_codes(ctx, code=body.code)
    ctx.commit()
    return RecoveryCodesOut(recovery_codes=codes)


@router.delete("/2fa", status_code=204)
def disable_2fa(ctx: CtxDep, body: TotpDisableIn) -> Response:
    totp.disable(ctx, password=body.password, code=body.code)
    ctx.commit()
    return Response(status_code=204)
