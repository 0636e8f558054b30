"""SSH public keys of a user (or, later, of an alias user): public material, unique per owner."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, SoftDeletable, Timestamped
from tenantry.ids import uuid7


class SshKey(Timestamped, SoftDeletable, Base):
    __tablename__ = "ssh_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    # The owner: a user's own id, or an alias user's (alias users are users with a parent).
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    key_type: Mapped[str] = mapped_column(String(40))  # ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa, …
    # Normalized OpenSSH form `<type> <base64 blob>`, without the comment.
    public_key: Mapped[str] = mapped_column(Text)
    comment: Mapped[str] = mapped_column(String(255), default="")
    fingerprint: Mapped[str] = mapped_column(String(64))  # `SHA256:<base64, no padding>` of the blob

    __table_args__ = (
        Index(
            "uq_ssh_keys_live_fingerprint",
            "user_id",
            "fingerprint",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )
