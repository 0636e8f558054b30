"""Alias roles: permission sets a parent user defines for its alias users (DESIGN §1 Alias user).

Owned by the parent user, not by a tenant: an alias acts wherever its parent does, and the
engine caps it by the parent's own permissions there.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, SoftDeletable, Timestamped
from tenantry.db.types import JSONType
from tenantry.ids import uuid7


class AliasRole(Timestamped, SoftDeletable, Base):
    __tablename__ = "alias_roles"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    permissions: Mapped[list[str]] = mapped_column(JSONType, default=list)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index(
            "uq_alias_roles_live_name",
            "owner_id",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )
