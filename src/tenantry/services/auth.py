"""Sign-in: password (+ TOTP) login with brute-force protection, sessions, bearer/cookie auth.

The database is authoritative for every token on every request: deactivating a user, a
password reset or a revocation takes effect on the very next request, on every instance.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import aliased

from tenantry.authz import Principal
from tenantry.authz import cache as authz_cache
from tenantry.authz.engine import mark_decided, require_authenticated, require_session
from tenantry.db import session as db_session
from tenantry.db.engine import sqlite_write_intent
from tenantry.db.tables import ApiKey, AuthSession, LoginThrottle, User
from tenantry.db.types import utcnow
from tenantry.errors import NotFound, PermissionDenied, RateLimited, Unauthenticated
from tenantry.ids import TOKEN_PREFIX_API_KEY, TOKEN_PREFIX_IMPERSONATION, TOKEN_PREFIX_SESSION
from tenantry.security import tokens
from tenantry.security.passwords import hash_password, needs_rehash, verify_password
from tenantry.services import audit, impersonation, settings, throttle, totp
from tenantry.services.context import ServiceContext
from tenantry.services.sessions import keep_signed_in_user, may_act, principal_of, revoke_user_sessions

# Refresh `last_seen_at` at most this often: a write per request would serialise readers.
_TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedSession:
    token: str
    expires_at: datetime
    session_id: uuid.UUID
    csrf_token: str | None
    requires_2fa_setup: bool


def account_key(email: str) -> str:
    return throttle.account_key(email)


def clear_throttle(ctx: ServiceContext, email: str) -> None:
    throttle.clear_account(ctx, email)


def open_session(ctx: ServiceContext, user: User, *, cookie: bool) -> IssuedSession:
    s = settings.user_security(ctx.session, ctx.settings, user)
    now = utcnow()
    token = tokens.new_token(TOKEN_PREFIX_SESSION)
    csrf = tokens.new_token("") if cookie else None
    restricted = user.totp_enabled_at is None and s.require_2fa
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
    # Both counters are reserved before the password is checked (atomic check-and-count), and
    # handed back only when the attempt turns out not to be a failure.
    address = ctx.meta.ip or "unknown"
    limiter = throttle.limiter(s)
    ticket = limiter.reserve(address)
    key = account_key(email_n)
    # Read the account in the reservation's transaction (which commits): the password is then
    # checked with no transaction open, and re-read under lock before anything relies on it.
    seen = _Seen.of(ctx.session.scalar(select(User).where(User.email == email_n)))
    try:
        failures, newly_locked = throttle.reserve_account_attempt(ctx, key)
    except RateLimited:
        limiter.release(address, ticket)  # turned away unchecked: not a guess from this address
        raise
    user, password_ok, new_hash = _check_password(ctx, email_n, password, seen, totp_code=totp_code)

    def fail(
        reason: str, code: str = "invalid_credentials", detail: str = "email or password is wrong"
    ) -> None:
        audit.record(
            ctx,
            "auth.login_failed",
            target_type="user",
            target_id=user.id if user else None,
            after={"email": email_n, "reason": reason, "consecutive_failures": failures},
            tenant_id=None,
        )
        if newly_locked and user is not None:
            throttle.notify_locked(ctx, user, failures)
        ctx.commit()
        raise Unauthenticated(detail, code=code)

    if user is not None and user.parent_id is not None and password_ok and user.active:
        parent = ctx.session.get(User, user.parent_id)
        if not may_act(user, parent.active if parent is not None else None):
            fail("parent_inactive")  # an alias signs in only while its parent may
    if user is None or not password_ok or not user.active or user.password_hash is None:
        fail("unknown_email" if user is None else "bad_password" if not password_ok else "inactive")
    assert user is not None and user.password_hash is not None
    if not newly_locked and throttle.is_locked(ctx, key):
        # Parallel failures locked the account while this password was being checked: it is
        # locked now, as if they had come first (only a reset lifts a lock-out).
        limiter.release(address, ticket)
        ctx.commit()
        raise throttle.locked_out()
    if user.totp_enabled_at is not None:
        if not totp_code:
            # The password was right; the client must ask for the second factor. Not a failure,
            # so it must not lock the account either (undo a lock this very attempt set).
            limiter.release(address, ticket)
            undo: dict[str, object] = {"failures": max(0, failures - 1)}
            if newly_locked:
                undo["locked_at"] = None
            ctx.session.execute(update(LoginThrottle).where(LoginThrottle.account_key == key).values(**undo))
            ctx.commit()
            raise Unauthenticated("enter the code from your authenticator app", code="totp_required")
        # Parallel sign-ins with one code (or recovery code) are decided one after another on
        # the locked row: the loser sees the spent step/code and gets 401, not a version conflict.
        if not totp.verify_second_factor(ctx, user, totp_code):
            fail("bad_totp", code="invalid_totp", detail="the code is not valid")
    limiter.release(address, ticket)
    if new_hash is not None:
        # The argon2 parameters changed since this hash was made: upgrade it while we have the
        # password in hand (the only moment we do). A conditional UPDATE, not a versioned write:
        # parallel sign-ins must not fail on each other, and a password changed meanwhile wins.
        ctx.session.execute(
            update(User)
            .where(User.id == user.id, User.password_hash == user.password_hash)
            .values(password_hash=new_hash)
        )
    clear_throttle(ctx, email_n)
    issued = open_session(ctx, user, cookie=cookie)
    ctx.principal = principal_of(user, label=user.email, session_id=issued.session_id)
    audit.record(
        ctx,
        "auth.login",
        target_type="session",
        target_id=issued.session_id,
        tenant_id=None,
        after={"restricted": issued.requires_2fa_setup, "cookie": cookie},
    )
    return issued


# How often the password is checked again when the account changed while it was being checked.
_RECHECKS = 3


@dataclass(frozen=True)
class _Seen:
    """What a password check relies on, read before the check (no ORM object: no lazy loads)."""

    user_id: uuid.UUID | None
    password_hash: str | None
    active: bool
    totp_enabled: bool

    @classmethod
    def of(cls, user: User | None) -> _Seen:
        if user is None:
            return cls(None, None, False, False)
        return cls(user.id, user.password_hash, user.active, user.totp_enabled_at is not None)


def _check_password(
    ctx: ServiceContext, email_n: str, password: str, seen: _Seen, *, totp_code: str | None
) -> tuple[User | None, bool, str | None]:
    """argon2 with no transaction open, then a write transaction that re-reads the account.

    On SQLite a writing request holds the database's only write lock from BEGIN to COMMIT, so
    a hash inside it (tens of milliseconds) would queue every sign-in behind it. The check
    runs between transactions instead, against the hash read before; then the account is read
    again, locked, in the transaction that writes the outcome. If it changed meanwhile (another
    password, deactivated, created or deleted), the check is repeated against what is there
    now: the answer is always the one for the account as the write transaction sees it.

    Returns (the account as re-read, or None; whether the password matched its hash; a new
    hash when the stored one was made with other argon2 parameters and will be upgraded).
    The write transaction stays open for the caller.
    """
    s = ctx.settings
    for attempt in range(_RECHECKS):
        if not db_session.release(ctx.session):  # never: login starts its own unit of work
            raise RuntimeError("login inside a unit of work that has written")
        # Security: one argon2 verification in every case (the dummy hash for an unknown email).
        ok = verify_password(seen.password_hash, password, s)
        new_hash = None
        if (
            ok
            and seen.password_hash is not None
            and seen.active
            and (not seen.totp_enabled or totp_code)
            and needs_rehash(seen.password_hash, s)
        ):
            new_hash = hash_password(password, s)
        user = ctx.session.scalar(
            select(User)
            .where(User.email == email_n)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        now = _Seen.of(user)
        if (now.user_id, now.password_hash) == (seen.user_id, seen.password_hash):
            return user, ok, new_hash
        if attempt == _RECHECKS - 1:
            return user, False, None  # changing faster than it can be checked: refuse
        ctx.session.rollback()  # nothing written yet: give the lock back, check again
        seen = now
    raise AssertionError("unreachable")


def authenticate(
    ctx: ServiceContext, token: str, *, csrf_token: str | None = None, cookie: bool = False
) -> Principal:
    """Token → principal. Missing, forged, expired, revoked, or an inactive/deleted owner → 401."""
    if token.startswith(TOKEN_PREFIX_API_KEY) and not cookie:
        return _authenticate_key(ctx, token)
    if token.startswith(TOKEN_PREFIX_IMPERSONATION) and not cookie:
        return impersonation.authenticate_token(ctx, token)
    if not token.startswith(TOKEN_PREFIX_SESSION):
        raise Unauthenticated("token is not valid", code="invalid_token")
    # Columns, not an AuthSession entity: this runs on every request, and building a mapped
    # object costs more than the query. The user is loaded as an entity and kept alive for
    # the request (the identity map holds it weakly), so `users.me()` needs no second query.
    row = ctx.session.execute(
        select(
            User,
            AuthSession.id,
            AuthSession.created_at,
            AuthSession.revoked_at,
            AuthSession.expires_at,
            AuthSession.idle_expires_at,
            AuthSession.last_seen_at,
            AuthSession.csrf_hash,
            AuthSession.restricted,
            authz_cache.version_column().label("authz_version"),
            settings.version_columns()[1].label("settings_version"),
            _PARENT.active.label("parent_active"),
        )
        .join(User, User.id == AuthSession.user_id)
        .outerjoin(_PARENT, _PARENT.id == User.parent_id)
        .where(AuthSession.token_hash == tokens.digest(token))
    ).first()
    now = utcnow()
    if row is None:
        raise Unauthenticated("token is not valid", code="invalid_token")
    user, sess = row[0], row
    if (
        sess.revoked_at is not None
        or sess.expires_at <= now
        or sess.idle_expires_at <= now
        or not may_act(user, row.parent_active)
    ):
        raise Unauthenticated("token is not valid", code="invalid_token")
    keep_signed_in_user(ctx, user)
    authz_cache.prime(ctx.session, row.authz_version)
    settings.prime(ctx.session, row.authz_version, row.settings_version)
    # The lifetimes that apply now, not those of the sign-in: a shorter one set since ends the
    # session at its next request (cached; a lookup only after a settings or membership change).
    policy = settings.user_security(ctx.session, ctx.settings, user)
    idle = timedelta(minutes=policy.session_idle_minutes)
    if (
        sess.created_at + timedelta(minutes=policy.session_absolute_minutes) <= now
        or sess.last_seen_at + idle <= now
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
        _touch(
            ctx,
            update(AuthSession)
            .where(AuthSession.id == sess.id, AuthSession.last_seen_at < now - _TOUCH_EVERY)
            .values(last_seen_at=now, idle_expires_at=min(now + idle, sess.expires_at)),
        )
    return principal_of(user, label=user.email, session_id=sess.id, restricted=sess.restricted)


# The parent of an alias user, read in the same query as the token (no extra round trip).
_PARENT = aliased(User, name="parent_user")


def raise_csrf() -> None:
    raise PermissionDenied("missing or wrong CSRF token", code="csrf_failed")


def _authenticate_key(ctx: ServiceContext, token: str) -> Principal:
    row = ctx.session.execute(
        select(
            User,
            ApiKey.id,
            ApiKey.name,
            ApiKey.scope,
            ApiKey.tenant_id,
            ApiKey.revoked_at,
            ApiKey.expires_at,
            ApiKey.last_used_at,
            authz_cache.version_column().label("authz_version"),
            _PARENT.active.label("parent_active"),
        )
        .join(User, User.id == ApiKey.user_id)
        .outerjoin(_PARENT, _PARENT.id == User.parent_id)
        .where(ApiKey.token_hash == tokens.digest(token))
    ).first()
    now = utcnow()
    if row is None:
        raise Unauthenticated("API key is not valid", code="invalid_token")
    user, key = row[0], row
    # Security: a key dies with its owner's access (deactivated or deleted owner → the join is
    # filtered or `active` is false).
    if key.revoked_at is not None or key.expires_at <= now or not may_act(user, row.parent_active):
        raise Unauthenticated("API key is not valid", code="invalid_token")
    keep_signed_in_user(ctx, user)
    authz_cache.prime(ctx.session, row.authz_version)
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
    return principal_of(
        user,
        label=f"{user.email} (key {key.name})",
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
    bind = ctx.session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    if engine.dialect.name == "sqlite" and sqlite_write_intent.get():
        # This request holds SQLite's write lock: a second connection would wait on us now, and
        # a write in our transaction would keep it from ending early around a password hash.
        # After our commit the lock is free (a request that never commits skips one touch).
        ctx.after_commit(lambda: _touch_now(engine, stmt))
        return
    _touch_now(engine, stmt)


def _touch_now(engine: Engine, stmt: Any) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(stmt)
            conn.commit()
    except OperationalError:
        pass


def logout(ctx: ServiceContext) -> None:
    if ctx.principal.impersonator_id is not None:
        impersonation.end(ctx)  # signing out of an impersonation ends it
        return
    require_authenticated(ctx.principal, writes=True, during_2fa_setup=True)
    if ctx.principal.session_id is None:
        raise Unauthenticated("not signed in with a session", code="not_a_session")
    ctx.session.execute(
        update(AuthSession).where(AuthSession.id == ctx.principal.session_id).values(revoked_at=utcnow())
    )
    audit.record(
        ctx, "auth.logout", target_type="session", target_id=ctx.principal.session_id, tenant_id=None
    )


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
