"""User accounts: global identities. (Administration endpoints: identity issue.)"""

from __future__ import annotations

from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select

from tenantry.authz import Perm
from tenantry.db.tables import User
from tenantry.errors import Conflict, Invalid
from tenantry.ids import uuid7
from tenantry.security.passwords import hash_password
from tenantry.services import audit
from tenantry.services.context import ServiceContext


def normalise_email(raw: str) -> str:
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise Invalid(str(exc), code="invalid_email", field="email") from None
    return result.normalized.lower()


def find_by_email(ctx: ServiceContext, email: str) -> User | None:
    return ctx.session.scalar(select(User).where(User.email == email.strip().lower()))


def snapshot(u: User) -> dict[str, Any]:
    return {
        "email": u.email,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "active": u.active,
        "is_superadmin": u.is_superadmin,
    }


def create_user(
    ctx: ServiceContext,
    *,
    email: str,
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
    is_superadmin: bool = False,
) -> User:
    ctx.require(Perm.USER_MANAGE, global_scope=True)
    email = normalise_email(email)
    exists = ctx.session.scalar(
        select(User.id).where(User.email == email).execution_options(include_deleted=True)
    )
    if exists is not None:
        raise Conflict("a user with this email exists", code="email_taken", field="email")
    user = User(
        id=uuid7(),
        email=email,
        first_name=first_name,
        last_name=last_name,
        password_hash=hash_password(password) if password else None,
        is_superadmin=is_superadmin,
    )
    ctx.session.add(user)
    ctx.session.flush()
    audit.record(ctx, "user.create", target_type="user", target_id=user.id, after=snapshot(user), tenant_id=None)
    return user
