"""Personal API keys: `tnt_pat_` + 32 random bytes, shown once, stored as SHA-256."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from tenantry.authz import Perm, visibility
from tenantry.authz.engine import require_authenticated, require_key_scope, require_session
from tenantry.db.tables import ApiKey, Tenant
from tenantry.db.types import utcnow
from tenantry.errors import Invalid, NotFound
from tenantry.ids import TOKEN_PREFIX_API_KEY
from tenantry.security import tokens
from tenantry.services import audit
from tenantry.services.context import ServiceContext

SCOPES = ("read", "read_write")


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    token: str


def _require_session(ctx: ServiceContext) -> None:
    require_session(ctx.principal, "manage API keys")


def create_key(
    ctx: ServiceContext,
    *,
    name: str,
    scope: str,
    expires_at: datetime | None = None,
    tenant_id: uuid.UUID | None = None,
) -> CreatedKey:
    _require_session(ctx)
    s = ctx.settings
    name = name.strip()
    if not name:
        raise Invalid("name must not be empty", code="invalid_name", field="name")
    if scope not in SCOPES:
        raise Invalid("scope must be read or read_write", code="invalid_scope", field="scope")
    now = utcnow()
    if expires_at is None:
        expires_at = now + timedelta(days=s.api_key_default_days)
    if expires_at.tzinfo is None:
        raise Invalid("expires_at needs a time zone", code="invalid_expiry", field="expires_at")
    if expires_at <= now:
        raise Invalid("expires_at must be in the future", code="invalid_expiry", field="expires_at")
    if expires_at > now + timedelta(days=s.api_key_max_days):
        raise Invalid(
            f"keys live at most {s.api_key_max_days} days", code="expiry_too_far", field="expires_at"
        )
    if tenant_id is not None and (
        not visibility.can_see_tenant(ctx.session, ctx.principal, tenant_id)
        # Visible to a superadmin is not the same as existing: unknown or trashed tenants too.
        or ctx.session.scalar(select(Tenant.id).where(Tenant.id == tenant_id)) is None
    ):
        # Security: the same answer as for a tenant that does not exist.
        raise NotFound("tenant")
    require_key_scope(ctx.session, ctx.principal, scope, tenant_id)
    token = tokens.new_token(TOKEN_PREFIX_API_KEY)
    key = ApiKey(
        user_id=ctx.principal.user_id,
        name=name[:100],
        token_hash=tokens.digest(token),
        prefix=token[: len(TOKEN_PREFIX_API_KEY) + 4],
        scope=scope,
        tenant_id=tenant_id,
        expires_at=expires_at,
    )
    ctx.session.add(key)
    ctx.session.flush()
    audit.record(
        ctx,
        "api_key.create",
        target_type="api_key",
        target_id=key.id,
        tenant_id=None,
        after={"name": key.name, "scope": scope, "tenant_id": tenant_id, "expires_at": expires_at},
    )
    return CreatedKey(key, token)


def list_keys(ctx: ServiceContext) -> list[ApiKey]:
    require_authenticated(ctx.principal)
    return list(
        ctx.session.scalars(
            select(ApiKey)
            .where(ApiKey.user_id == ctx.principal.user_id, ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.created_at.desc())
        )
    )


def revoke_key(ctx: ServiceContext, key_id: uuid.UUID) -> None:
    _require_session(ctx)
    n = ctx.session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.user_id == ctx.principal.user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    if not n:
        raise NotFound("API key")
    audit.record(ctx, "api_key.revoke", target_type="api_key", target_id=key_id, tenant_id=None)


def list_user_keys(ctx: ServiceContext, user_id: uuid.UUID) -> list[ApiKey]:
    """Account administration (the CLI): a user's live keys, without their secrets."""
    ctx.require(Perm.USER_READ, global_scope=True)
    return list(
        ctx.session.scalars(
            select(ApiKey)
            .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.created_at.desc())
        )
    )


def revoke_user_key(ctx: ServiceContext, user_id: uuid.UUID, key_id: uuid.UUID) -> None:
    """Account administration (the CLI): revoke one of a user's keys."""
    ctx.require(Perm.USER_MANAGE, global_scope=True)
    n = ctx.session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    if not n:
        raise NotFound("API key")
    audit.record(ctx, "api_key.revoke", target_type="api_key", target_id=key_id, tenant_id=None)


def revoke_all_of_user(ctx: ServiceContext, user_id: uuid.UUID, *, reason: str) -> int:
    """Revoke every live key of a user for good (each audited). The caller authorizes.

    Security: a key must not come back to life when its owner does (reactivation); the owner
    makes new keys instead.
    """
    ids = list(
        ctx.session.scalars(
            update(ApiKey)
            .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .returning(ApiKey.id)
        )
    )
    for key_id in ids:
        audit.record(
            ctx,
            "api_key.revoke",
            target_type="api_key",
            target_id=key_id,
            after={"reason": reason},
            tenant_id=None,
        )
    return len(ids)
