"""Role grants. Tenant and resource scope are tenant-owned rows; global scope is its own table."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, SoftDeletable, TenantOwned
from tenantry.db.types import utcnow
from tenantry.ids import uuid7


class Grant(TenantOwned, SoftDeletable, Base):
    """(principal, role) in one tenant, optionally narrowed to one resource and its children."""

    __tablename__ = "grants"

    principal_type: Mapped[str] = mapped_column(String(8))  # user | group
    principal_id: Mapped[uuid.UUID]
    role_key: Mapped[str] = mapped_column(String(100))
    resource_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["tenant_id", "resource_id"], ["resources.tenant_id", "resources.id"], ondelete="CASCADE"
        ),
        Index("ix_grants_principal", "principal_type", "principal_id", "tenant_id"),
    )


class GlobalGrant(Base):
    __tablename__ = "global_grants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    principal_type: Mapped[str] = mapped_column(String(8))
    principal_id: Mapped[uuid.UUID] = mapped_column(index=True)
    role_key: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
