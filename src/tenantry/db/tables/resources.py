"""Tenant-owned typed objects. A parent is always in the same tenant (composite foreign key)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, SoftDeletable, TenantOwned, Timestamped
from tenantry.db.types import JSONType


class Resource(TenantOwned, Timestamped, SoftDeletable, Base):
    __tablename__ = "resources"

    type: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["tenant_id", "parent_id"], ["resources.tenant_id", "resources.id"], ondelete="CASCADE"
        ),
        Index("ix_resources_tenant_id_type_name", "tenant_id", "type", "name"),
        # Children of a parent: the recursive visibility CTE and cascading deletes walk this.
        Index("ix_resources_tenant_id_parent_id", "tenant_id", "parent_id"),
        # The list's order (name, id) within a tenant: a page reads 100 rows, not the tenant.
        Index("ix_resources_tenant_id_name_id", "tenant_id", "name", "id"),
    )
