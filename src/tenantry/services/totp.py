"""Two-factor authentication with TOTP (RFC 6238) and single-use recovery codes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pyotp
import segno
from sqlalchemy import update

from tenantry.authz.engine import require_session
from tenantry.db.tables import AuthSession, User
from tenantry.db.types import utcnow
from tenantry.errors import Conflict, Invalid, Unauthenticated
from tenantry.security import tokens
from tenantry.security.passwords import verify_password
from tenantry.services import audit, settings, throttle
from tenantry.services.context import ServiceContext
from tenantry.services.sessions import revoke_user_sessions

ISSUER = "Tenantry"
RECOVERY_CODES = 10


@dataclass(frozen=True)
class TotpSetup:
    secret: str
    otpauth_uri: str
    qr_svg: str


def _me(ctx: ServiceContext) -> User:
    require_session(ctx.principal, "manage 2FA", during_2fa_setup=True)
    user = ctx.session.get(User, ctx.principal.user_id) if ctx.principal.user_id else None
    if user is None:
        raise Unauthenticated("sign in first")
    return user


def _accept_code(user: User, code: str) -> bool:
    """Valid in the current step ±1, and newer than the last accepted step (no replay)."""
    code = code.strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6 or not user.totp_secret:
        return False
    totp = pyotp.TOTP(user.totp_secret)
    now_step = totp.timecode(utcnow())
    for step in (now_step - 1, now_step, now_step + 1):
        if user.totp_last_step is not None and step <= user.totp_last_step:
            continue
        if tokens.same(totp.generate_otp(step), code):
            user.totp_last_step = step
            return True
    return False


def _use_recovery_code(user: User, code: str) -> bool:
    digest = tokens.digest(code.strip().lower().replace("-", ""))
    remaining = [h for h in user.recovery_code_hashes if not tokens.same(h, digest)]
    if len(remaining) == len(user.recovery_code_hashes):
        return False
    user.recovery_code_hashes = remaining
    return True


def _require_code(user: User, code: str) -> None:
    if not _accept_code(user, code):
        raise Invalid("the code is not valid", code="invalid_totp", field="code")


def verify_second_factor(ctx: ServiceContext, user: User, code: str) -> bool:
    """A TOTP code or one unused recovery code (consumed)."""
    if _accept_code(user, code):
        return True
    if _use_recovery_code(user, code):
        audit.record(
            ctx,
            "auth.recovery_code_used",
            target_type="user",
            target_id=user.id,
            after={"remaining": len(user.recovery_code_hashes)},
            tenant_id=None,
        )
        return True
    return False


def start_setup(ctx: ServiceContext) -> TotpSetup:
    user = _me(ctx)
    if user.totp_enabled_at is not None:
        raise Conflict("2FA is already enabled; disable it first", code="2fa_already_enabled")
    user.totp_secret = pyotp.random_base32(32)
    user.totp_last_step = None
    uri = pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    svg = segno.make(uri, error="m").svg_inline(scale=4)
    audit.record(ctx, "2fa.setup_start", target_type="user", target_id=user.id, tenant_id=None)
    return TotpSetup(user.totp_secret, uri, svg)


def _new_recovery_codes(user: User) -> list[str]:
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]
    user.recovery_code_hashes = [tokens.digest(c.replace("-", "")) for c in codes]
    return codes


def enable(ctx: ServiceContext, *, code: str) -> list[str]:
    user = _me(ctx)
    if user.totp_enabled_at is not None:
        raise Conflict("2FA is already enabled", code="2fa_already_enabled")
    if not user.totp_secret:
        raise Conflict("start the 2FA setup first", code="2fa_setup_not_started")
    throttle.guard_secret(ctx, user, lambda: _require_code(user, code))
    user.totp_enabled_at = utcnow()
    codes = _new_recovery_codes(user)
    if ctx.principal.session_id:
        # 2FA done: a session restricted to finishing set-up becomes a normal one.
        ctx.session.execute(
            update(AuthSession).where(AuthSession.id == ctx.principal.session_id).values(restricted=False)
        )
    # Sessions opened with the password alone end: from now on a sign-in needs the second factor.
    revoked = revoke_user_sessions(ctx, user.id, keep=ctx.principal.session_id)
    audit.record(
        ctx,
        "2fa.enable",
        target_type="user",
        target_id=user.id,
        after={"other_sessions_revoked": revoked},
        tenant_id=None,
    )
    return codes


def regenerate_recovery_codes(ctx: ServiceContext, *, code: str) -> list[str]:
    user = _me(ctx)
    if user.totp_enabled_at is None:
        raise Conflict("2FA is not enabled", code="2fa_not_enabled")
    throttle.guard_secret(ctx, user, lambda: _require_code(user, code))
    codes = _new_recovery_codes(user)
    audit.record(ctx, "2fa.recovery_codes_regenerate", target_type="user", target_id=user.id, tenant_id=None)
    return codes


def requires_2fa(ctx: ServiceContext, user: User) -> bool:
    """True when the settings that apply to the user demand 2FA: any tenant it belongs to (for an
    alias: its parent's tenants, where it works) requires it, or the system value in none."""
    return settings.user_security(ctx.session, ctx.settings, user).require_2fa


def disable(ctx: ServiceContext, *, password: str, code: str) -> None:
    """Needs both the password and a current code (or a recovery code)."""
    user = _me(ctx)
    if user.totp_enabled_at is None:
        raise Conflict("2FA is not enabled", code="2fa_not_enabled")
    if requires_2fa(ctx, user):
        raise Conflict("a tenant you belong to requires 2FA", code="2fa_required_by_tenant")

    def check_password(password_hash: str | None) -> None:
        if not verify_password(password_hash, password, ctx.settings):
            raise Invalid("the password is wrong", code="invalid_password", field="password")

    def check_code() -> None:
        if not verify_second_factor(ctx, user, code):
            raise Invalid("the code is not valid", code="invalid_totp", field="code")

    throttle.guard_secret(ctx, user, check_code, slow_check=check_password)
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    user.recovery_code_hashes = []
    # A security setting changed: every other session ends (this one stays).
    revoked = revoke_user_sessions(ctx, user.id, keep=ctx.principal.session_id)
    audit.record(
        ctx,
        "2fa.disable",
        target_type="user",
        target_id=user.id,
        after={"other_sessions_revoked": revoked},
        tenant_id=None,
    )
