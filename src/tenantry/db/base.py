"""Declarative base, naming convention and the mixins that carry tenancy and soft delete."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import MetaData, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from tenantry.db.types import UTCDateTime, utcnow
from tenantry.ids import uuid7

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), uuid.UUID: Uuid()}


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SoftDeletable:
    """Rows go to the trash first: `deleted_at` hides them, `deletion_batch_id` restores a family."""

    deleted_at: Mapped[datetime | None] = mapped_column(default=None)

    @declared_attr
    def deletion_batch_id(cls) -> Mapped[uuid.UUID | None]:
        return mapped_column(Uuid(), default=None, index=True)


class TenantOwned:
    """Tenant-owned rows: `tenant_id NOT NULL` leads the primary key (DESIGN §3).

    Foreign keys between tenant-owned tables include `tenant_id` so a row can never point
    into another tenant. `db/scoping.py` keys off this mixin.
    """

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:
        return mapped_column(Uuid(), primary_key=True)

    @declared_attr
    def id(cls) -> Mapped[uuid.UUID]:
        return mapped_column(Uuid(), primary_key=True, default=uuid7)
