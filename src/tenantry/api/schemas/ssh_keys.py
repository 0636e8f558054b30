from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from tenantry.api.schemas import MultiLine, SingleLine, Strict
from tenantry.db.tables import SshKey


class SshKeyCreate(Strict):
    name: SingleLine = Field(min_length=1, max_length=100, examples=["laptop"])
    # MultiLine so a pasted private key (several lines) reaches the service and gets its own
    # answer (`ssh_private_key`); the service accepts exactly one line.
    public_key: MultiLine = Field(
        min_length=1, max_length=16384, examples=["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... me@laptop"]
    )


class SshKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    key_type: str
    public_key: str
    comment: str
    fingerprint: str
    created_at: datetime

    @classmethod
    def of(cls, k: SshKey) -> SshKeyOut:
        return cls(
            id=k.id,
            name=k.name,
            key_type=k.key_type,
            public_key=k.public_key,
            comment=k.comment,
            fingerprint=k.fingerprint,
            created_at=k.created_at,
        )
