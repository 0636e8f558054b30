"""Settings values: system values (no tenant) and per-tenant overrides, one JSON value per key.

What the keys are, their types, defaults and who may override them is the catalog's
(`services/settings_catalog.py`); these tables only hold what an administrator changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, TenantOwned
from tenantry.db.types import JSONType, utcnow


class SystemSetting(Base):
    """A system value set at run time; absent keys fall back to the deployment (TENANTRY_*)."""

    __tablename__ = "system_settings"

    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TenantSetting(TenantOwned, Base):
    """A tenant's override of one key (tenant-owned: scoped and, on PostgreSQL, under RLS).

    Not soft-deletable: resetting a key removes its row, and a trashed tenant's overrides stay
    with it (its purge removes them through the foreign key).
    """

    __tablename__ = "tenant_settings"

    category: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[Any] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "category", "key"),
    )
