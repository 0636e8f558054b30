"""Who a signed-in account acts as, and ending its sessions: steps sign-in, impersonation, 2FA
and user management share.

Kept apart from services/auth.py so that services below sign-in (2FA management) can use it
without importing the sign-in module that imports them.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import update

from tenantry.authz import Principal
from tenantry.db.tables import AuthSession, User
from tenantry.db.types import utcnow
from tenantry.services.context import ServiceContext


def revoke_user_sessions(ctx: ServiceContext, user_id: uuid.UUID, *, keep: uuid.UUID | None = None) -> int:
    """Revoke every live session of a user (optionally keeping the current one)."""
    stmt = update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if keep is not None:
        stmt = stmt.where(AuthSession.id != keep)
    return ctx.session.execute(stmt.values(revoked_at=utcnow())).rowcount or 0  # type: ignore[attr-defined]


def principal_of(user: User, **kw: Any) -> Principal:
    """A user acts as itself; an alias user acts under its parent's ceiling (the engine caps it)."""
    if user.parent_id is not None:
        return Principal(kind="alias", user_id=user.id, ceiling_user_id=user.parent_id, **kw)
    return Principal(kind="user", user_id=user.id, is_superadmin=user.is_superadmin, **kw)


def keep_signed_in_user(ctx: ServiceContext, user: User) -> None:
    """Hold the caller's row for the request: the identity map holds it only weakly, and with
    this reference a later `session.get(User, id)` (`users.me()`) needs no second query."""
    ctx.session.info["signed_in_user"] = user


def may_act(user: User, parent_active: bool | None) -> bool:
    """An active user; an alias only while its parent is active and not in the trash (the trash
    filter hides a deleted parent, so `parent_active` is then None)."""
    return user.active and (user.parent_id is None or parent_active is True)
