"""Custom roles. Global ones are their own table; a tenant's own roles are tenant-owned rows."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKeyConstraint, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, SoftDeletable, TenantOwned, Timestamped
from tenantry.db.types import JSONType
from tenantry.ids import uuid7


class RoleFields(Timestamped, SoftDeletable):
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    permissions: Mapped[list[str]] = mapped_column(JSONType, default=list)
    version: Mapped[int] = mapped_column(default=1)


class Role(RoleFields, Base):
    """A custom role usable in every tenant (and at global scope); superadmins manage these."""

    __tablename__ = "roles"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)

    __mapper_args__ = {"version_id_col": RoleFields.version}
    __table_args__ = (
        Index(
            "uq_roles_live_key",
            "key",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )


class TenantRole(TenantOwned, RoleFields, Base):
    """A custom role owned by one tenant, usable only there."""

    __tablename__ = "tenant_roles"

    __mapper_args__ = {"version_id_col": RoleFields.version}
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        Index(
            "uq_tenant_roles_live_key",
            "tenant_id",
            "key",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )
