"""One row per deletion: what was deleted (the root), how much came along, until when it is kept."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base
from tenantry.db.types import JSONType, utcnow


class DeletionBatch(Base):
    __tablename__ = "deletion_batches"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(default=None)  # None: a global object
    root_type: Mapped[str] = mapped_column(String(32))
    root_id: Mapped[uuid.UUID]
    root_name: Mapped[str] = mapped_column(String(320))
    counts: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    deleted_by_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    deleted_by: Mapped[str] = mapped_column(String(320), default="")
    deleted_at: Mapped[datetime] = mapped_column(default=utcnow)
    purge_after: Mapped[datetime]
    restored_at: Mapped[datetime | None] = mapped_column(default=None)
    purged_at: Mapped[datetime | None] = mapped_column(default=None)
    # Lease for the purge job: several instances never purge one batch twice.
    purge_locked_until: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_deletion_batches_tenant_id_deleted_at", "tenant_id", "deleted_at"),
        Index("ix_deletion_batches_purge_after", "purge_after"),
    )
