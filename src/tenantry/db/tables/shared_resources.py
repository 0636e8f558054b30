"""System-owned resources (e.g. shared gateways) with tenant slots."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, SoftDeletable, TenantOwned, Timestamped
from tenantry.db.types import JSONType
from tenantry.ids import uuid7


class SharedResource(Timestamped, SoftDeletable, Base):
    __tablename__ = "shared_resources"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(64), default="gateway")
    status: Mapped[str] = mapped_column(String(32), default="active")
    capacity: Mapped[int] = mapped_column(default=1)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class SharedResourceAssignment(TenantOwned, Timestamped, SoftDeletable, Base):
    """A tenant's slot on a shared resource: tenant-owned, so it travels with the tenant."""

    __tablename__ = "shared_resource_assignments"

    shared_resource_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shared_resources.id", ondelete="CASCADE")
    )

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        Index(
            "uq_shared_resource_assignments_live",
            "shared_resource_id",
            "tenant_id",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )
