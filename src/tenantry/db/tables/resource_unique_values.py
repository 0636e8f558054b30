"""One row per (resource, unique field): the database enforces per-tenant uniqueness, race-free.

The partial unique index covers live rows only, so a trashed resource frees its values and a
restore that would collide is detected by the same index.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKeyConstraint, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, SoftDeletable, TenantOwned


class ResourceUniqueValue(TenantOwned, SoftDeletable, Base):
    __tablename__ = "resource_unique_values"

    resource_id: Mapped[uuid.UUID]
    type: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(512))

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "resource_id"], ["resources.tenant_id", "resources.id"], ondelete="CASCADE"
        ),
        Index(
            "uq_resource_unique_values_live",
            "tenant_id",
            "type",
            "field",
            "value",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_resource_unique_values_resource", "tenant_id", "resource_id"),
    )
