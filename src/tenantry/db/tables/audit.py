"""Append-only audit events. Ids, not foreign keys, so events outlive purged objects.

Each tenant's events, and the global ones, form a hash chain (`db/audit_chain.py`);
`audit_chain_heads` holds each chain's newest link and is the lock its writers queue on.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base
from tenantry.db.types import JSONType, utcnow
from tenantry.ids import uuid7


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    actor_type: Mapped[str] = mapped_column(String(16))  # user | alias | api_key | system
    actor_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    actor_label: Mapped[str] = mapped_column(String(320), default="")
    impersonator_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(64), default="")
    target_id: Mapped[str | None] = mapped_column(String(64), default=None)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(512), default=None)
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # The chain (set when the event is flushed, see db/audit_chain.py): place in the stream,
    # predecessor's hash, own hash.
    seq: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_events_tenant_id_id", "tenant_id", "id"),
        Index("ix_audit_events_tenant_id_seq", "tenant_id", "seq"),
        Index("ix_audit_events_actor_id", "actor_id"),
        Index("ix_audit_events_action", "action"),
        Index("ix_audit_events_target", "target_type", "target_id"),
    )


class AuditChainHead(Base):
    """The newest link of one chain: a tenant's id, or the nil UUID for the global events."""

    __tablename__ = "audit_chain_heads"

    stream: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
