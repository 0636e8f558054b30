from __future__ import annotations

import uuid

from pydantic import BaseModel, Field, StrictBool, model_validator

from tenantry.api.schemas import SingleLine, Strict
from tenantry.services.memberships import MemberView


class MemberCreate(Strict):
    user_id: uuid.UUID | None = None
    email: SingleLine | None = Field(default=None, min_length=3, max_length=320)
    role: SingleLine = Field(default="member", min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one_of(self) -> MemberCreate:
        if (self.user_id is None) == (self.email is None):
            raise ValueError("give exactly one of user_id and email")
        return self


class MemberUpdate(Strict):
    role: SingleLine | None = Field(default=None, min_length=1, max_length=100)
    is_default: StrictBool | None = None

    @model_validator(mode="after")
    def _something(self) -> MemberUpdate:
        if self.role is None and self.is_default is None:
            raise ValueError("give role and/or is_default")
        if self.is_default is False:
            raise ValueError("is_default can only be set to true (pick another tenant to move it)")
        return self


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    first_name: str
    last_name: str
    active: bool
    roles: list[str]
    is_default: bool
    invitation_pending: bool

    @classmethod
    def of(cls, v: MemberView) -> MemberOut:
        u = v.user
        return cls(
            user_id=u.id,
            email=u.email,
            first_name=u.first_name,
            last_name=u.last_name,
            active=u.active,
            roles=v.roles,
            is_default=v.is_default,
            invitation_pending=u.password_hash is None,
        )
