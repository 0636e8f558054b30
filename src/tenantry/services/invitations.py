"""Invitations and password resets: single-use links, stored hashed, mailed via the outbox."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, update

from tenantry.authz.engine import mark_decided, require_session
from tenantry.db import session as db_session
from tenantry.db.tables import Tenant, User, UserToken
from tenantry.db.types import utcnow
from tenantry.errors import Invalid
from tenantry.ids import uuid7
from tenantry.mail import outbox
from tenantry.security import tokens
from tenantry.security.password_policy import check_password
from tenantry.security.passwords import dummy_hash, hash_password, verify_password
from tenantry.services import audit, auth, credentials, membership_invitations, sessions, settings, throttle
from tenantry.services.context import ServiceContext

INVITATION = "invitation"
PASSWORD_RESET = "password_reset"


def _issue(ctx: ServiceContext, user: User, kind: str, ttl: timedelta, tenant_id: uuid.UUID | None) -> str:
    """A new single-use token; any older unused one of the same kind stops working."""
    now = utcnow()
    ctx.session.execute(
        update(UserToken)
        .where(UserToken.user_id == user.id, UserToken.kind == kind, UserToken.used_at.is_(None))
        .values(used_at=now)
    )
    token = tokens.new_token("")
    ctx.session.add(
        UserToken(
            id=uuid7(),
            user_id=user.id,
            kind=kind,
            token_hash=tokens.digest(token),
            tenant_id=tenant_id,
            expires_at=now + ttl,
        )
    )
    return token


def send_invitation(
    ctx: ServiceContext, user: User, *, tenant: Tenant | None = None, audit_in_tenant: bool = True
) -> None:
    """Mail an invitation link (re-sending invalidates the previous link). Caller authorizes.

    `audit_in_tenant=False` keeps the event out of the tenant's log: a tenant admin inviting an
    address must not learn from it that a new account was made.
    """
    s = ctx.settings
    ttl = timedelta(days=s.invitation_days)
    token = _issue(ctx, user, INVITATION, ttl, tenant.id if tenant else None)
    outbox.enqueue(
        ctx.session,
        kind="invitation",
        to=user.email,
        language=user.language,
        tenant_id=tenant.id if tenant else None,
        context={
            "link": f"{s.public_url}/invitations/accept?token={token}",
            "inviter": ctx.principal.label or "An administrator",
            "tenant_name": tenant.name if tenant else None,
            "expires_at": (utcnow() + ttl).strftime("%Y-%m-%d %H:%M UTC"),
        },
    )
    audit.record(
        ctx,
        "invitation.send",
        target_type="user",
        target_id=user.id,
        after={"email": user.email},
        tenant_id=tenant.id if tenant and audit_in_tenant else None,
    )


def _find(ctx: ServiceContext, token: str, kind: str, *, lock: bool) -> tuple[UserToken, User]:
    stmt = (
        select(UserToken, User)
        .join(User, User.id == UserToken.user_id)
        .where(UserToken.token_hash == tokens.digest(token.strip()), UserToken.kind == kind)
        # A second read in one session must see the row as it is now, not as first loaded.
        .execution_options(populate_existing=True)
    )
    row = ctx.session.execute(stmt.with_for_update(of=UserToken) if lock else stmt).first()
    if row is None or row[0].used_at is not None or row[0].expires_at <= utcnow():
        raise Invalid(
            "this link is not valid any more; ask for a new one",
            code="invalid_or_expired_token",
            field="token",
        )
    return row[0], row[1]


def _redeem(ctx: ServiceContext, token: str, kind: str) -> tuple[UserToken, User]:
    ut, user = _find(ctx, token, kind, lock=True)
    ut.used_at = utcnow()
    return ut, user


def _redeem_setting_password(
    ctx: ServiceContext, token: str, kind: str, password: str, *, first: bool
) -> tuple[UserToken, User]:
    """Redeem a link that sets a password; the hash is made between two transactions.

    The link is checked and the password rules applied first (bad input costs no hash), then
    the password is hashed with no transaction open, then the link is redeemed under lock and
    everything checked again on what is there now. `first`: an invitation, which must not
    replace a password set meanwhile (e.g. through a reset).
    """

    def check(user: User) -> None:
        if first and user.password_hash is not None:
            # Security: once a password exists (e.g. set through a reset) an old invitation
            # link must not replace it without the current password.
            raise Invalid(
                "this link is not valid any more; ask for a new one",
                code="invalid_or_expired_token",
                field="token",
            )
        check_password(
            password,
            email=user.email,
            has_2fa=user.totp_enabled_at is not None,
            settings=settings.user_security(ctx.session, ctx.settings, user),
        )

    _, user = _find(ctx, token, kind, lock=False)
    check(user)
    password_hash = credentials.hash_new_password(ctx, password)
    ut, user = _redeem(ctx, token, kind)
    check(user)
    user.password_hash = password_hash
    user.password_changed_at = utcnow()
    return ut, user


def accept_invitation(ctx: ServiceContext, *, token: str, password: str) -> auth.IssuedSession:
    """Set the first password and sign in (restricted to 2FA set-up if a tenant demands it)."""
    mark_decided("public")
    ut, user = _redeem_setting_password(ctx, token, INVITATION, password, first=True)
    audit.record(ctx, "invitation.accept", target_type="user", target_id=user.id, tenant_id=ut.tenant_id)
    membership_invitations.join_on_signup(ctx, user, ut.tenant_id)
    return auth.open_session(ctx, user, cookie=False)


def forgot_password(ctx: ServiceContext, *, email: str) -> None:
    """Always the same answer. Security: comparable work whether or not the address exists."""
    mark_decided("public")
    s = ctx.settings
    email_n = email.strip().lower()[:320]
    # Constant cost in both branches, spent before the transaction takes its locks (on SQLite
    # the database's write lock): argon2 must not queue other writers behind it.
    db_session.release(ctx.session)
    verify_password(dummy_hash(s), email_n, s)
    # Locked: parallel requests for one address are counted one after another.
    user = ctx.session.scalar(
        select(User).where(User.email == email_n, User.active.is_(True)).with_for_update()
    )
    if user is None:
        audit.record(
            ctx, "password.forgot_unknown", target_type="user", after={"email": email_n}, tenant_id=None
        )
        return
    sent = ctx.session.scalar(
        select(func.count())
        .select_from(UserToken)
        .where(
            UserToken.user_id == user.id,
            UserToken.kind == PASSWORD_RESET,
            UserToken.created_at > utcnow() - timedelta(hours=1),
        )
    )
    if (sent or 0) >= s.password_reset_max_per_hour:
        # Security: no mail bomb through someone's address, and the same answer as ever (the
        # caller cannot tell a limited address from an unknown one); the last link stays valid.
        audit.record(ctx, "password.forgot_limited", target_type="user", target_id=user.id, tenant_id=None)
        return
    token = _issue(ctx, user, PASSWORD_RESET, timedelta(minutes=s.password_reset_minutes), None)
    outbox.enqueue(
        ctx.session,
        kind="password_reset",
        to=user.email,
        language=user.language,
        context={"link": f"{s.public_url}/reset-password?token={token}"},
    )
    audit.record(ctx, "password.forgot", target_type="user", target_id=user.id, tenant_id=None)


def reset_password(ctx: ServiceContext, *, token: str, new_password: str) -> None:
    """Single use, 1 hour; every session of the user is revoked afterwards and a lock-out lifted."""
    mark_decided("public")
    _, user = _redeem_setting_password(ctx, token, PASSWORD_RESET, new_password, first=False)
    revoked = sessions.revoke_user_sessions(ctx, user.id)
    auth.clear_throttle(ctx, user.email)
    audit.record(
        ctx,
        "password.reset",
        target_type="user",
        target_id=user.id,
        after={"sessions_revoked": revoked},
        tenant_id=None,
    )


def change_password(ctx: ServiceContext, *, current_password: str, new_password: str) -> None:
    """Needs the current password; signs out every other session."""
    require_session(ctx.principal, "change the password")
    user = ctx.session.get(User, ctx.principal.user_id)
    if user is None:
        raise Invalid("change the password from a signed-in session", code="session_required")

    def verify_and_hash(password_hash: str | None) -> str:
        # Both argon2 steps run with no transaction open (see `throttle.guard_secret`).
        if not verify_password(password_hash, current_password, ctx.settings):
            raise Invalid("the current password is wrong", code="invalid_password", field="current_password")
        return hash_password(new_password, ctx.settings)

    check_password(
        new_password,
        email=user.email,
        has_2fa=user.totp_enabled_at is not None,
        settings=settings.user_security(ctx.session, ctx.settings, user),
    )
    # Throttled like a sign-in: a stolen session must not be a free password oracle.
    new_hash = throttle.guard_secret(ctx, user, slow_check=verify_and_hash)
    assert new_hash is not None
    user.password_hash = new_hash
    user.password_changed_at = utcnow()
    revoked = sessions.revoke_user_sessions(ctx, user.id, keep=ctx.principal.session_id)
    audit.record(
        ctx,
        "password.change",
        target_type="user",
        target_id=user.id,
        after={"other_sessions_revoked": revoked},
        tenant_id=None,
    )
