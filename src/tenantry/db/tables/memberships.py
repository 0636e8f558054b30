"""A user's membership of a tenant: the precondition for working in it."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, SoftDeletable, TenantOwned, Timestamped


class Membership(TenantOwned, Timestamped, SoftDeletable, Base):
    __tablename__ = "memberships"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        Index("ix_memberships_user_id_tenant_id", "user_id", "tenant_id"),
        Index(
            "uq_memberships_live",
            "tenant_id",
            "user_id",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )
