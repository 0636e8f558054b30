"""Sign-in: password login → opaque session token; token → principal; logout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from tenantry.authz import Principal
from tenantry.authz.engine import mark_decided
from tenantry.config import get_settings
from tenantry.db.tables import AuthSession, User
from tenantry.db.types import utcnow
from tenantry.errors import Unauthenticated
from tenantry.ids import TOKEN_PREFIX_SESSION
from tenantry.security import tokens
from tenantry.security.passwords import verify_password
from tenantry.services import audit
from tenantry.services.context import ServiceContext

# Refresh `last_seen_at` at most this often: a write per request would serialise readers.
_TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime
    session_id: object


def login(ctx: ServiceContext, *, email: str, password: str) -> IssuedToken:
    """Check the password (always spending one argon2 verification) and open a session.

    Security: the same error for unknown email, wrong password and inactive account.
    """
    mark_decided("public")
    user = ctx.session.scalar(select(User).where(User.email == email.strip().lower()))
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        audit.record(ctx, "auth.login_failed", target_type="user", target_id=user.id if user else None,
                     after={"email": email.strip().lower()[:320]}, tenant_id=None)
        ctx.commit()
        raise Unauthenticated("email or password is wrong", code="invalid_credentials")
    s = get_settings()
    now = utcnow()
    token = tokens.new_token(TOKEN_PREFIX_SESSION)
    row = AuthSession(
        token_hash=tokens.digest(token),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        idle_expires_at=now + timedelta(minutes=s.session_idle_minutes),
        expires_at=now + timedelta(minutes=s.session_absolute_minutes),
        ip=ctx.meta.ip,
        user_agent=(ctx.meta.user_agent or "")[:512] or None,
    )
    ctx.session.add(row)
    ctx.session.flush()
    ctx.principal = Principal(kind="user", user_id=user.id, label=user.email, is_superadmin=user.is_superadmin)
    audit.record(ctx, "auth.login", target_type="session", target_id=row.id, tenant_id=None)
    return IssuedToken(token=token, expires_at=min(row.idle_expires_at, row.expires_at), session_id=row.id)


def authenticate(ctx: ServiceContext, token: str) -> Principal:
    """Turn a bearer token into a principal. Missing, forged, expired or revoked → Unauthenticated."""
    if not token.startswith(TOKEN_PREFIX_SESSION):
        raise Unauthenticated("token is not valid", code="invalid_token")
    row = ctx.session.execute(
        select(AuthSession, User)
        .join(User, User.id == AuthSession.user_id)
        .where(AuthSession.token_hash == tokens.digest(token))
    ).first()
    now = utcnow()
    if row is None:
        raise Unauthenticated("token is not valid", code="invalid_token")
    sess, user = row
    if sess.revoked_at is not None or sess.expires_at <= now or sess.idle_expires_at <= now or not user.active:
        raise Unauthenticated("token is not valid", code="invalid_token")
    if now - sess.last_seen_at > _TOUCH_EVERY:
        idle = timedelta(minutes=get_settings().session_idle_minutes)
        ctx.session.execute(
            update(AuthSession)
            .where(AuthSession.id == sess.id)
            .values(last_seen_at=now, idle_expires_at=min(now + idle, sess.expires_at))
        )
    return Principal(
        kind="user", user_id=user.id, label=user.email, is_superadmin=user.is_superadmin, session_id=sess.id
    )


def logout(ctx: ServiceContext) -> None:
    mark_decided("authenticated")
    if ctx.principal.session_id is None:
        raise Unauthenticated("not signed in with a session")
    ctx.session.execute(
        update(AuthSession).where(AuthSession.id == ctx.principal.session_id).values(revoked_at=utcnow())
    )
    audit.record(ctx, "auth.logout", target_type="session", target_id=ctx.principal.session_id, tenant_id=None)
