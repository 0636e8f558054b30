"""The tenant: the customer separator. Not itself tenant-owned; visibility is an authz decision."""

from __future__ import annotations

import uuid

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, SoftDeletable, Timestamped
from tenantry.ids import uuid7


class Tenant(Timestamped, SoftDeletable, Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    # Stored lower-case; unique across live *and* trashed tenants so a restore never collides.
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # The tenant's values of the settings catalog's `branding` category (None: the system value).
    branding_color: Mapped[str | None] = mapped_column(String(7), default=None)
    branding_logo_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    status: Mapped[str] = mapped_column(String(16), default="active")
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
