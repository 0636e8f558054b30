from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from tenantry.api.schemas import IsoDateTime, Password, SingleLine, Strict


class LoginIn(Strict):
    email: SingleLine = Field(min_length=3, max_length=320)
    # NIST 800-63B: accept long passphrases and never truncate; 1024 bounds the hashing cost.
    password: Password = Field(min_length=1, max_length=1024)
    totp_code: SingleLine | None = Field(default=None, max_length=64)


class TokenOut(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    requires_2fa_setup: bool = False


class CookieLoginOut(BaseModel):
    csrf_token: str
    expires_at: datetime
    requires_2fa_setup: bool = False


class ForgotIn(Strict):
    email: SingleLine = Field(min_length=1, max_length=320)


class ResetIn(Strict):
    token: SingleLine = Field(min_length=10, max_length=200)
    new_password: Password = Field(min_length=1, max_length=1024)


class AcceptIn(Strict):
    token: SingleLine = Field(min_length=10, max_length=200)
    password: Password = Field(min_length=1, max_length=1024)


class SessionOut(BaseModel):
    id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool


class ApiKeyCreate(Strict):
    name: SingleLine = Field(min_length=1, max_length=100)
    scope: Literal["read", "read_write"] = "read"
    expires_at: IsoDateTime | None = None
    tenant_id: uuid.UUID | None = None


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    scope: str
    tenant_id: uuid.UUID | None
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    token: str


class TotpSetupOut(BaseModel):
    secret: str
    otpauth_uri: str
    qr_svg: str


class CodeIn(Strict):
    code: SingleLine = Field(min_length=6, max_length=64)


class TotpDisableIn(Strict):
    password: Password = Field(min_length=1, max_length=1024)
    code: SingleLine = Field(min_length=6, max_length=64)


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str]
