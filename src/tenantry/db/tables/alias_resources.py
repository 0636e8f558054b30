"""The resources an alias user is restricted to (none: all of its parent's)."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, ForeignKeyConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base


class AliasResource(Base):
    """Owned by the alias (a user), not by a tenant: it names a resource of the parent's tenants.

    The composite foreign key keeps `tenant_id` honest; deleting the resource (or the alias, for
    good) drops the assignment. The engine reads it, cached per authorization version.
    """

    __tablename__ = "alias_resources"

    alias_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    resource_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column()

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "resource_id"], ["resources.tenant_id", "resources.id"], ondelete="CASCADE"
        ),
    )
