from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictBool

from tenantry.api.schemas import Password, SingleLine, Strict
from tenantry.db.tables import User


class UserCreate(Strict):
    email: SingleLine = Field(min_length=3, max_length=320)
    first_name: SingleLine = Field(default="", max_length=100)
    last_name: SingleLine = Field(default="", max_length=100)
    password: Password | None = Field(default=None, min_length=1, max_length=1024)
    is_superadmin: StrictBool = False


class UserUpdate(Strict):
    first_name: SingleLine | None = Field(default=None, max_length=100)
    last_name: SingleLine | None = Field(default=None, max_length=100)
    active: StrictBool | None = None
    is_superadmin: StrictBool | None = None

    def changes(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.model_fields_set if getattr(self, k) is not None}


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    first_name: str
    last_name: str
    active: bool
    is_superadmin: bool
    default_tenant_id: uuid.UUID | None
    two_factor_enabled: bool
    invitation_pending: bool
    created_at: datetime

    @classmethod
    def of(cls, u: User) -> UserOut:
        return cls(
            id=u.id,
            email=u.email,
            first_name=u.first_name,
            last_name=u.last_name,
            active=u.active,
            is_superadmin=u.is_superadmin,
            default_tenant_id=u.default_tenant_id,
            two_factor_enabled=u.totp_enabled_at is not None,
            invitation_pending=u.password_hash is None,
            created_at=u.created_at,
        )


class Preferences(Strict):
    hide_ai: StrictBool | None = None
    compact_tables: StrictBool | None = None
    show_tips: StrictBool | None = None


class ImpersonatedBy(BaseModel):
    id: uuid.UUID
    email: str


class MeOut(UserOut):
    # null: mails and messages follow the tenant's default language, else English.
    language: str | None
    theme: str
    preferences: dict[str, bool]
    # Set under an impersonation token: who is really acting as this user.
    impersonated_by: ImpersonatedBy | None = None

    @classmethod
    def of(cls, u: User, impersonated_by: ImpersonatedBy | None = None) -> MeOut:
        base = UserOut.of(u).model_dump()
        return cls(
            **base,
            language=u.language,
            theme=u.theme,
            preferences=u.preferences or {},
            impersonated_by=impersonated_by,
        )


class MeUpdate(Strict):
    first_name: SingleLine | None = Field(default=None, max_length=100)
    last_name: SingleLine | None = Field(default=None, max_length=100)
    language: Literal["en", "de"] | None = None
    theme: Literal["light", "dark", "system"] | None = None
    preferences: Preferences | None = None
    default_tenant_id: uuid.UUID | None = None

    def changes(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for k in self.model_fields_set:
            v = getattr(self, k)
            if k == "preferences":
                out[k] = {pk: pv for pk, pv in (v.model_dump() if v else {}).items() if pv is not None}
            elif v is not None or k in ("default_tenant_id", "language"):
                out[k] = v
        return out


class PasswordChange(Strict):
    current_password: Password = Field(min_length=1, max_length=1024)
    new_password: Password = Field(min_length=1, max_length=1024)


class UserTenantOut(BaseModel):
    """A tenant the caller may work in. `access`: why (member, superadmin, or a global grant
    such as `tenant.cross_view`); a suspended tenant is listed but closed to its members."""

    id: uuid.UUID
    slug: str
    name: str
    status: Literal["active", "suspended"]
    access: Literal["member", "superadmin", "cross_view"]
    roles: list[str]
    is_default: bool
    member_count: int
    resource_count: int


class DeletionOut(BaseModel):
    deletion_batch_id: uuid.UUID
