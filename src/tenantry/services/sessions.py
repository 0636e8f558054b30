"""Ending a user's sessions: the one step every credential change shares (sign-in, 2FA, users).

Kept apart from services/auth.py so that services below sign-in (2FA management) can use it
without importing the sign-in module that imports them.
"""

from __future__ import annotations

import uuid

from sqlalchemy import update

from tenantry.db.tables import AuthSession
from tenantry.db.types import utcnow
from tenantry.services.context import ServiceContext


def revoke_user_sessions(ctx: ServiceContext, user_id: uuid.UUID, *, keep: uuid.UUID | None = None) -> int:
    """Revoke every live session of a user (optionally keeping the current one)."""
    stmt = update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if keep is not None:
        stmt = stmt.where(AuthSession.id != keep)
    return ctx.session.execute(stmt.values(revoked_at=utcnow())).rowcount or 0  # type: ignore[attr-defined]
