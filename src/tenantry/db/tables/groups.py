"""Global groups of users; grants may name a group instead of a user."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, SoftDeletable, Timestamped
from tenantry.db.types import utcnow
from tenantry.ids import uuid7


class Group(Timestamped, SoftDeletable, Base):
    __tablename__ = "groups"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        Index(
            "uq_groups_live_name",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthzState(Base):
    """One row: the authorization version. Every role/grant/group/membership change bumps it in
    the same transaction, so every instance's permission cache notices on its next request.
    `settings_version` does the same for the settings catalog's values (services/settings.py)."""

    __tablename__ = "authz_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(default=0)
    settings_version: Mapped[int] = mapped_column(default=0)
