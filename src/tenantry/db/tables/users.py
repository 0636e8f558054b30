"""Global identities: one account, many tenants."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, SoftDeletable, Timestamped
from tenantry.db.types import JSONType
from tenantry.ids import uuid7


class User(Timestamped, SoftDeletable, Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    # Normalised (lower-cased) on the way in, so the unique index is case-insensitive.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    active: Mapped[bool] = mapped_column(default=True)
    is_superadmin: Mapped[bool] = mapped_column(default=False)
    default_tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="SET NULL"), default=None
    )
    # None: follow the tenant's default language (else English).
    language: Mapped[str | None] = mapped_column(String(8), default=None)
    theme: Mapped[str] = mapped_column(String(8), default="system")
    preferences: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    password_changed_at: Mapped[datetime | None] = mapped_column(default=None)
    # TOTP: the shared secret, the last accepted time step (replay guard), hashed recovery codes.
    totp_secret: Mapped[str | None] = mapped_column(String(64), default=None)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(default=None)
    totp_last_step: Mapped[int | None] = mapped_column(default=None)
    recovery_code_hashes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Alias users (DESIGN §1): a parent user and the alias role that, capped by the parent's own
    # permissions, says what the alias may do. Both NULL for ordinary users.
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None, index=True
    )
    alias_role_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("alias_roles.id", ondelete="SET NULL", use_alter=True), default=None
    )
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}
