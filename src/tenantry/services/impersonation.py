"""Impersonation: a superadmin acts as another user for a while, with a reason, audited with both names.

Who may impersonate whom, and what is refused while impersonating (account security, writes in
read-only mode, another impersonation) are the engine's rules (`authz/engine.py`); this module
issues, checks and ends the tokens and writes the audit events.

The token (`tnt_imp_…`) is stored only as its SHA-256, like a session's. On every request the
database decides: it dies at its expiry, when it is ended, when either user is deactivated or
deleted, or when the engine would no longer allow the pair.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import aliased

from tenantry.authz import Principal
from tenantry.authz import cache as authz_cache
from tenantry.authz import engine as authz
from tenantry.db import scoping
from tenantry.db.engine import sqlite_write_intent
from tenantry.db.tables import Impersonation, Membership, Tenant, User
from tenantry.db.types import utcnow
from tenantry.errors import Conflict, Invalid, NotFound, PermissionDenied, Unauthenticated
from tenantry.ids import TOKEN_PREFIX_IMPERSONATION
from tenantry.mail import outbox
from tenantry.mail.identity import tenant_mail_identity
from tenantry.security import tokens
from tenantry.services import audit, settings
from tenantry.services.context import ServiceContext
from tenantry.services.sessions import keep_signed_in_user, may_act, principal_of

# session.info keys: the users behind the current impersonation, held for the request so that
# `users.me()` and `impersonated_by()` need no further query.
_IMPERSONATOR = "impersonator"


@dataclass(frozen=True)
class IssuedImpersonation:
    token: str
    expires_at: datetime
    impersonation_id: uuid.UUID


@dataclass(frozen=True)
class Impersonator:
    id: uuid.UUID
    email: str


def start(
    ctx: ServiceContext, *, user_id: uuid.UUID, reason: str, minutes: int, read_only: bool = False
) -> IssuedImpersonation:
    """Begin acting as `user_id` → a token of its own; the caller's session stays as it was."""
    # TENANTRY_IMPERSONATION=off is the deployment's switch; the settings catalog may only narrow
    # it: its system value, then the values of the target's tenants (below).
    system = settings.effective(ctx.session, ctx.settings, None).security
    enabled = ctx.settings.impersonation and system.impersonation_allowed
    authz.require_impersonation_start(ctx.session, ctx.principal, enabled=enabled)
    reason = reason.strip()
    if not reason or any(c in reason for c in "\r\n"):
        raise Invalid("give a reason (one line)", code="reason_required")
    _check_minutes(minutes, system.impersonation_max_minutes)
    stmt = select(User).where(User.id == user_id)  # trash filtered: 404
    if not ctx.principal.is_superadmin:
        # A parent finds only its own aliases: anyone else is refused like an account it may
        # not act as, whether it exists or not.
        stmt = stmt.where(User.parent_id == ctx.principal.user_id)
    target = ctx.session.scalar(stmt)
    if target is None and ctx.principal.is_superadmin:
        raise NotFound("user")
    authz.require_impersonate(
        ctx.session,
        ctx.principal,
        user_id,
        target_is_superadmin=target is not None and target.is_superadmin,
        target_parent_id=target.parent_id if target is not None else None,
    )
    assert target is not None  # a parent passes only for its own alias, which was found
    if not target.active:
        raise Conflict("the user is deactivated", code="user_inactive")
    policy = settings.user_security(ctx.session, ctx.settings, target)
    if not policy.impersonation_allowed:
        raise PermissionDenied(
            "a tenant of this user does not allow impersonation", code="impersonation_not_allowed"
        )
    _check_minutes(minutes, policy.impersonation_max_minutes)
    assert ctx.principal.user_id is not None
    now = utcnow()
    token = tokens.new_token(TOKEN_PREFIX_IMPERSONATION)
    row = Impersonation(
        token_hash=tokens.digest(token),
        impersonator_id=ctx.principal.user_id,
        user_id=target.id,
        reason=reason[:500],
        read_only=read_only,
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
        ip=ctx.meta.ip,
        user_agent=(ctx.meta.user_agent or "")[:512] or None,
    )
    ctx.session.add(row)
    ctx.session.flush()
    tenant_ids = _record_everywhere(
        ctx,
        "impersonation.start",
        target,
        {
            "impersonation_id": row.id,
            "impersonator": {"id": ctx.principal.user_id, "label": ctx.principal.label},
            "user": {"id": target.id, "email": target.email},
            "reason": row.reason,
            "read_only": read_only,
            "expires_at": row.expires_at,
        },
    )
    _notify_target(ctx, target, row, tenant_ids)
    return IssuedImpersonation(token, row.expires_at, row.id)


def _check_minutes(minutes: int, maximum: int) -> None:
    if not 1 <= minutes <= maximum:
        raise Invalid(
            f"minutes must be between 1 and {maximum}", code="minutes_out_of_range", max_minutes=maximum
        )


def _notify_target(
    ctx: ServiceContext, target: User, row: Impersonation, tenant_ids: list[uuid.UUID]
) -> None:
    """Tell the user someone acts as them, in their tenant's branding, unless the tenant's mail
    identity says not to. A parent acting as its own alias tells nobody but itself: no mail."""
    if target.parent_id is not None:
        return
    tenant_id = target.default_tenant_id if target.default_tenant_id in tenant_ids else None
    tenant_id = tenant_id or (tenant_ids[0] if tenant_ids else None)
    if not tenant_mail_identity(ctx.session, ctx.settings, tenant_id).impersonation_notice:
        return
    tenant = ctx.session.get(Tenant, tenant_id) if tenant_id is not None else None
    outbox.enqueue(
        ctx.session,
        kind="impersonation_notice",
        to=target.email,
        language=target.language,
        tenant_id=tenant_id,
        context={
            "impersonator": ctx.principal.label or "An administrator",
            "reason": row.reason,
            "expires_at": row.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
            "tenant_name": tenant.name if tenant is not None else None,
        },
    )


def end(ctx: ServiceContext) -> None:
    """End the impersonation whose token made this request; the token dies at once."""
    authz.require_impersonating(ctx.principal)
    row = ctx.session.get(Impersonation, ctx.principal.session_id)
    if row is None or row.ended_at is not None:
        raise Unauthenticated("token is not valid", code="invalid_token")
    ctx.session.execute(
        update(Impersonation)
        .where(Impersonation.id == row.id, Impersonation.ended_at.is_(None))
        .values(ended_at=utcnow())
    )
    target = ctx.session.get(User, row.user_id)
    assert target is not None
    _record_everywhere(
        ctx,
        "impersonation.end",
        target,
        {
            "impersonation_id": row.id,
            "impersonator": {"id": row.impersonator_id},
            "user": {"id": target.id, "email": target.email},
        },
    )


def impersonated_by(ctx: ServiceContext) -> Impersonator | None:
    """Who is really acting, when this request runs under an impersonation token."""
    authz.require_authenticated(ctx.principal, during_2fa_setup=True)
    real_id = ctx.principal.impersonator_id
    if real_id is None:
        return None
    held = ctx.session.info.get(_IMPERSONATOR)
    if isinstance(held, Impersonator) and held.id == real_id:
        return held
    email = ctx.session.scalar(select(User.email).where(User.id == real_id))
    if email is None:
        raise Unauthenticated("token is not valid", code="invalid_token")
    return Impersonator(real_id, email)


def authenticate_token(ctx: ServiceContext, token: str) -> Principal:
    """An impersonation token → the target's principal, with `impersonator_id` set.

    Expired, ended, unknown, either user deactivated or deleted (the trash filter hides them
    from the join), or a pair the engine no longer allows → 401.
    """
    real = aliased(User, name="impersonator")
    parent = aliased(User, name="target_parent")
    row = ctx.session.execute(
        select(
            User,
            Impersonation.id,
            Impersonation.expires_at,
            Impersonation.ended_at,
            Impersonation.read_only,
            real.id.label("real_id"),
            real.email.label("real_email"),
            real.active.label("real_active"),
            real.is_superadmin.label("real_superadmin"),
            parent.active.label("parent_active"),
            authz_cache.version_column().label("authz_version"),
        )
        .join(User, User.id == Impersonation.user_id)
        .join(real, real.id == Impersonation.impersonator_id)
        .outerjoin(parent, parent.id == User.parent_id)
        .where(Impersonation.token_hash == tokens.digest(token))
    ).first()
    if row is None:
        raise Unauthenticated("token is not valid", code="invalid_token")
    user = row[0]
    if (
        row.ended_at is not None
        or row.expires_at <= utcnow()
        or not may_act(user, row.parent_active)  # an alias target only while its parent may act
        or not row.real_active
        or not authz.may_impersonate(
            impersonator_id=row.real_id,
            impersonator_is_superadmin=row.real_superadmin,
            target_id=user.id,
            target_is_superadmin=user.is_superadmin,
            target_parent_id=user.parent_id,
        )
    ):
        raise Unauthenticated("token is not valid", code="invalid_token")
    keep_signed_in_user(ctx, user)
    ctx.session.info[_IMPERSONATOR] = Impersonator(row.real_id, row.real_email)
    authz_cache.prime(ctx.session, row.authz_version)
    # An alias target acts under its parent's ceiling, exactly as its own sign-in makes it.
    principal = principal_of(
        user,
        label=user.email,
        session_id=row.id,
        impersonator_id=row.real_id,
        key_scope="read" if row.read_only else "read_write",
    )
    if not sqlite_write_intent.get():
        # A read under the token leaves a trace too (what was looked at, by whom, as whom). A
        # write is audited by its own event, with both names, in its own transaction.
        ctx.principal = principal
        audit.record_apart(
            ctx,
            "impersonation.request",
            target_type="impersonation",
            target_id=row.id,
            after={"path": ctx.meta.path},
        )
    return principal


def _record_everywhere(
    ctx: ServiceContext, action: str, target: User, after: dict[str, Any]
) -> list[uuid.UUID]:
    """One global event, and one in each of the target's tenants so their admins see it too.

    Returns those tenants."""
    audit.record(ctx, action, target_type="user", target_id=target.id, after=after, tenant_id=None)
    with scoping.cross_tenant(ctx.session):
        tenant_ids = list(
            ctx.session.scalars(
                select(Membership.tenant_id)
                .join(Tenant, Tenant.id == Membership.tenant_id)
                .where(Membership.user_id == target.id)
                .order_by(Membership.tenant_id)
            )
        )
    for tenant_id in tenant_ids:
        audit.record(ctx, action, target_type="user", target_id=target.id, after=after, tenant_id=tenant_id)
    return tenant_ids
