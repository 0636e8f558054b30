from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field, StrictBool

from tenantry.api.schemas import Password, SingleLine, Strict
from tenantry.services.aliases import AliasView


class AliasCreate(Strict):
    email: SingleLine = Field(min_length=3, max_length=320)
    password: Password | None = Field(
        default=None, min_length=1, max_length=1024, description="none: an invitation mail goes out"
    )
    first_name: SingleLine = Field(default="", max_length=100)
    last_name: SingleLine = Field(default="", max_length=100)
    role_id: uuid.UUID
    resource_ids: list[uuid.UUID] | None = Field(
        default=None, max_length=500, description="none or empty: all of the parent's resources"
    )


class AliasUpdate(Strict):
    first_name: SingleLine | None = Field(default=None, max_length=100)
    last_name: SingleLine | None = Field(default=None, max_length=100)
    role_id: uuid.UUID | None = None
    resource_ids: list[uuid.UUID] | None = Field(default=None, max_length=500)
    active: StrictBool | None = None

    def changes(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.model_fields_set}


class AliasOut(BaseModel):
    id: uuid.UUID
    email: str
    first_name: str
    last_name: str
    active: bool
    role_id: uuid.UUID | None
    resource_ids: list[uuid.UUID]
    two_factor_enabled: bool
    invitation_pending: bool
    created_at: datetime

    @classmethod
    def of(cls, v: AliasView) -> AliasOut:
        a = v.alias
        return cls(
            id=a.id,
            email=a.email,
            first_name=a.first_name,
            last_name=a.last_name,
            active=a.active,
            role_id=a.alias_role_id,
            resource_ids=v.resource_ids,
            two_factor_enabled=a.totp_enabled_at is not None,
            invitation_pending=a.password_hash is None,
            created_at=a.created_at,
        )
