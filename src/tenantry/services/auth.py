"""Sign-in: password (+ TOTP) login with brute-force protection, sessions, bearer/cookie auth.

The database is authoritative for every token on every request: deactivating a user, a
password reset or a revocation takes effect on the very next request, on every instance.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError

from tenantry.authz import Principal
from tenantry.authz.engine import mark_decided, require_authenticated, require_session
from tenantry.config import Settings
from tenantry.db.engine import sqlite_write_intent
from tenantry.db.tables import ApiKey, AuthSession, LoginThrottle, User
from tenantry.db.types import utcnow
from tenantry.errors import NotFound, PermissionDenied, RateLimited, Unauthenticated
from tenantry.ids import TOKEN_PREFIX_API_KEY, TOKEN_PREFIX_SESSION
from tenantry.mail import outbox
from tenantry.security import tokens
from tenantry.security.passwords import verify_password
from tenantry.services import audit, throttle, totp
from tenantry.services.context import ServiceContext

# Refresh `last_seen_at` at most this often: a write per request would serialise readers.
_TOUCH_EVERY = timedelta(minutes=1)
_LOCKED_RETRY_AFTER = 3600


@dataclass(frozen=True)
class IssuedSession:
    token: str
    expires_at: datetime
    session_id: uuid.UUID
    csrf_token: str | None
    requires_2fa_setup: bool


def account_key(email: str) -> str:
    return tokens.digest("login:" + email.strip().lower())


def _delay_seconds(s: Settings, failures: int) -> int:
    if failures < s.login_free_failures:
        return 0
    return min(s.login_max_delay_seconds, 2 ** (failures - s.login_free_failures))


def _reserve_attempt(ctx: ServiceContext, key: str) -> tuple[int, bool]:
    """Count this attempt as a failure *before* checking the password, under a row lock.

    Parallel guesses therefore each consume an attempt: nobody races past the limit. Returns
    (failures so far including this one, newly locked). Raises RateLimited while waiting.
    """
    s = ctx.settings
    session = ctx.session
    ins = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    row = None
    for _ in range(3):
        # A successful sign-in in parallel may delete the row between the insert and the lock
        # (PostgreSQL then finds nothing): insert again rather than fail.
        session.execute(ins(LoginThrottle).values(account_key=key, failures=0).on_conflict_do_nothing())
        row = session.scalar(select(LoginThrottle).where(LoginThrottle.account_key == key).with_for_update())
        if row is not None:
            break
    assert row is not None
    now = utcnow()
    if row.locked_at is not None:
        ctx.commit()
        raise RateLimited(
            "too many failed sign-ins; reset your password to unlock",
            code="account_locked",
            retry_after=_LOCKED_RETRY_AFTER,
        )
    wait = _delay_seconds(s, row.failures)
    if wait and row.last_failed_at and row.last_failed_at + timedelta(seconds=wait) > now:
        ctx.commit()
        remaining = int((row.last_failed_at + timedelta(seconds=wait) - now).total_seconds()) + 1
        raise RateLimited(retry_after=remaining)
    row.failures += 1
    row.last_failed_at = now
    newly_locked = row.failures >= s.login_lock_after
    if newly_locked:
        row.locked_at = now
    ctx.commit()  # the reservation must survive whatever happens next
    return row.failures, newly_locked


def clear_throttle(ctx: ServiceContext, email: str) -> None:
    ctx.session.execute(delete(LoginThrottle).where(LoginThrottle.account_key == account_key(email)))


def open_session(ctx: ServiceContext, user: User, *, cookie: bool) -> IssuedSession:
    s = ctx.settings
    now = utcnow()
    token = tokens.new_token(TOKEN_PREFIX_SESSION)
    csrf = tokens.new_token("") if cookie else None
    restricted = user.totp_enabled_at is None and totp.requires_2fa(ctx, user)
    row = AuthSession(
        token_hash=tokens.digest(token),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        idle_expires_at=now + timedelta(minutes=s.session_idle_minutes),
        expires_at=now + timedelta(minutes=s.session_absolute_minutes),
        csrf_hash=tokens.digest(csrf) if csrf else None,
        restricted=restricted,
        ip=ctx.meta.ip,
        user_agent=(ctx.meta.user_agent or "")[:512] or None,
    )
    ctx.session.add(row)
    ctx.session.flush()
    return IssuedSession(token, min(row.idle_expires_at, row.expires_at), row.id, csrf, restricted)


def login(
    ctx: ServiceContext, *, email: str, password: str, totp_code: str | None = None, cookie: bool = False
) -> IssuedSession:
    """Password (+ second factor) → a new session. Always a *new* token: no session fixation.

    Security: one answer (`invalid_credentials`) for unknown email, wrong password and inactive
    account, and one argon2 verification in every case, so neither the answer nor its timing
    tells whether an address has an account.
    """
    mark_decided("public")
    s = ctx.settings
    email_n = email.strip().lower()[:320]
    address = ctx.meta.ip or "unknown"
    limiter = throttle.limiter(s)
    wait = limiter.blocked_for(address)
    if wait:
        raise RateLimited(retry_after=wait)
    key = account_key(email_n)
    failures, newly_locked = _reserve_attempt(ctx, key)
    user = ctx.session.scalar(select(User).where(User.email == email_n))
    password_ok = verify_password(user.password_hash if user else None, password, s)

    def fail(
        reason: str, code: str = "invalid_credentials", detail: str = "email or password is wrong"
    ) -> None:
        limiter.record_failure(address)
        audit.record(
            ctx,
            "auth.login_failed",
            target_type="user",
            target_id=user.id if user else None,
            after={"email": email_n, "reason": reason, "consecutive_failures": failures},
            tenant_id=None,
        )
        if newly_locked and user is not None:
            audit.record(ctx, "auth.account_locked", target_type="user", target_id=user.id, tenant_id=None)
            outbox.enqueue(
                ctx.session,
                kind="lockout",
                to=user.email,
                language=user.language,
                context={"failures": failures, "link": f"{s.public_url}/forgot-password"},
            )
        ctx.commit()
        raise Unauthenticated(detail, code=code)

    if user is None or not password_ok or not user.active or user.password_hash is None:
        fail("unknown_email" if user is None else "bad_password" if not password_ok else "inactive")
    assert user is not None
    if user.totp_enabled_at is not None:
        if not totp_code:
            # The password was right; the client must ask for the second factor. Not a failure,
            # so it must not lock the account either (undo a lock this very attempt set).
            undo: dict[str, object] = {"failures": max(0, failures - 1)}
            if newly_locked:
                undo["locked_at"] = None
            ctx.session.execute(update(LoginThrottle).where(LoginThrottle.account_key == key).values(**undo))
            ctx.commit()
            raise Unauthenticated("enter the code from your authenticator app", code="totp_required")
        # Parallel sign-ins with one code (or recovery code) are decided one after another on
        # the locked row: the loser sees the spent step/code and gets 401, not a version conflict.
        ctx.session.refresh(user, with_for_update=True)
        if not totp.verify_second_factor(ctx, user, totp_code):
            fail("bad_totp", code="invalid_totp", detail="the code is not valid")
    clear_throttle(ctx, email_n)
    issued = open_session(ctx, user, cookie=cookie)
    ctx.principal = Principal(
        kind="user",
        user_id=user.id,
        label=user.email,
        is_superadmin=user.is_superadmin,
        session_id=issued.session_id,
    )
    audit.record(
        ctx,
        "auth.login",
        target_type="session",
        target_id=issued.session_id,
        tenant_id=None,
        after={"restricted": issued.requires_2fa_setup, "cookie": cookie},
    )
    return issued


def authenticate(
    ctx: ServiceContext, token: str, *, csrf_token: str | None = None, cookie: bool = False
) -> Principal:
    """Token → principal. Missing, forged, expired, revoked, or an inactive/deleted owner → 401."""
    if token.startswith(TOKEN_PREFIX_API_KEY) and not cookie:
        return _authenticate_key(ctx, token)
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
    if (
        sess.revoked_at is not None
        or sess.expires_at <= now
        or sess.idle_expires_at <= now
        or not user.active
    ):
        raise Unauthenticated("token is not valid", code="invalid_token")
    # Security: for cookie sessions on unsafe methods the caller passes the CSRF header; it must
    # be the token bound to *this* session, not merely equal to some cookie.
    if (
        cookie
        and csrf_token is not None
        and (not sess.csrf_hash or not tokens.same(sess.csrf_hash, tokens.digest(csrf_token)))
    ):
        raise_csrf()
    if now - sess.last_seen_at > _TOUCH_EVERY:
        idle = timedelta(minutes=ctx.settings.session_idle_minutes)
        _touch(
            ctx,
            update(AuthSession)
            .where(AuthSession.id == sess.id, AuthSession.last_seen_at < now - _TOUCH_EVERY)
            .values(last_seen_at=now, idle_expires_at=min(now + idle, sess.expires_at)),
        )
    return Principal(
        kind="user",
        user_id=user.id,
        label=user.email,
        is_superadmin=user.is_superadmin,
        session_id=sess.id,
        restricted=sess.restricted,
    )


def raise_csrf() -> None:
    raise PermissionDenied("missing or wrong CSRF token", code="csrf_failed")


def _authenticate_key(ctx: ServiceContext, token: str) -> Principal:
    row = ctx.session.execute(
        select(ApiKey, User)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.token_hash == tokens.digest(token))
    ).first()
    now = utcnow()
    if row is None:
        raise Unauthenticated("API key is not valid", code="invalid_token")
    key, user = row
    # Security: a key dies with its owner's access (deactivated or deleted owner → the join is
    # filtered or `active` is false).
    if key.revoked_at is not None or key.expires_at <= now or not user.active:
        raise Unauthenticated("API key is not valid", code="invalid_token")
    if key.last_used_at is None or now - key.last_used_at > _TOUCH_EVERY:
        _touch(
            ctx,
            update(ApiKey)
            .where(
                ApiKey.id == key.id,
                (ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < now - _TOUCH_EVERY),
            )
            .values(last_used_at=now),
        )
    return Principal(
        kind="user",
        user_id=user.id,
        label=f"{user.email} (key {key.name})",
        is_superadmin=user.is_superadmin,
        key_id=key.id,
        key_scope="read" if key.scope == "read" else "read_write",
        key_tenant_id=key.tenant_id,
    )


def _touch(ctx: ServiceContext, stmt: Any) -> None:
    """Best-effort bookkeeping (last seen / last used) in its own short transaction.

    Not in the request's transaction: read-only requests never commit, and a write there would
    serialise every reader of one token behind a row lock. Losing a touch to a busy database
    costs nothing; the next request after a minute tries again.
    """
    engine = ctx.session.get_bind()
    if engine.dialect.name == "sqlite" and sqlite_write_intent.get():
        # This request already holds SQLite's write lock: a second connection would wait on us.
        ctx.session.execute(stmt)
        return
    try:
        with engine.connect() as conn:
            conn.execute(stmt)
            conn.commit()
    except OperationalError:
        pass


def logout(ctx: ServiceContext) -> None:
    require_authenticated(ctx.principal, writes=True, during_2fa_setup=True)
    if ctx.principal.session_id is None:
        raise Unauthenticated("not signed in with a session", code="not_a_session")
    ctx.session.execute(
        update(AuthSession).where(AuthSession.id == ctx.principal.session_id).values(revoked_at=utcnow())
    )
    audit.record(
        ctx, "auth.logout", target_type="session", target_id=ctx.principal.session_id, tenant_id=None
    )


def revoke_user_sessions(ctx: ServiceContext, user_id: uuid.UUID, *, keep: uuid.UUID | None = None) -> int:
    """Revoke every live session of a user (optionally keeping the current one)."""
    stmt = update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if keep is not None:
        stmt = stmt.where(AuthSession.id != keep)
    return ctx.session.execute(stmt.values(revoked_at=utcnow())).rowcount or 0  # type: ignore[attr-defined]


def list_sessions(ctx: ServiceContext) -> list[AuthSession]:
    require_authenticated(ctx.principal)
    now = utcnow()
    return list(
        ctx.session.scalars(
            select(AuthSession)
            .where(
                AuthSession.user_id == ctx.principal.user_id,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > now,
                AuthSession.idle_expires_at > now,
            )
            .order_by(AuthSession.created_at.desc())
        )
    )


def _require_session(ctx: ServiceContext) -> None:
    require_session(ctx.principal, "manage sessions")


def revoke_session(ctx: ServiceContext, session_id: uuid.UUID) -> None:
    _require_session(ctx)
    n = ctx.session.execute(
        update(AuthSession)
        .where(
            AuthSession.id == session_id,
            AuthSession.user_id == ctx.principal.user_id,
            AuthSession.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    if not n:
        raise NotFound("session")
    audit.record(ctx, "auth.session_revoke", target_type="session", target_id=session_id, tenant_id=None)


def revoke_all_sessions(ctx: ServiceContext) -> int:
    """Sign out everywhere (this session included)."""
    _require_session(ctx)
    assert ctx.principal.user_id is not None
    n = revoke_user_sessions(ctx, ctx.principal.user_id)
    audit.record(
        ctx,
        "auth.session_revoke_all",
        target_type="user",
        target_id=ctx.principal.user_id,
        after={"revoked": n},
        tenant_id=None,
    )
    return n
