"""An existing account asked to join a tenant: it joins only when it accepts (DESIGN §1).

Tenant-owned like the membership it may become. The address is kept as the inviting admin saw
it, so the tenant's list of open invitations never depends on the state of the account behind it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, SoftDeletable, TenantOwned, Timestamped


class MembershipInvitation(TenantOwned, Timestamped, SoftDeletable, Base):
    __tablename__ = "membership_invitations"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    role_key: Mapped[str] = mapped_column(String(100))
    invited_by_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    invited_by: Mapped[str] = mapped_column(String(320), default="")
    expires_at: Mapped[datetime]

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        Index("ix_membership_invitations_user_id", "user_id"),
        Index(
            "uq_membership_invitations_live",
            "tenant_id",
            "user_id",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )
