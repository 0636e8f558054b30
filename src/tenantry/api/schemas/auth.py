from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from tenantry.api.schemas import Strict


class LoginIn(Strict):
    email: str = Field(min_length=3, max_length=320)
    # NIST 800-63B: accept long passphrases and never truncate; 1024 bounds the hashing cost.
    password: str = Field(min_length=1, max_length=1024)
    totp_code: str | None = Field(default=None, max_length=64)


class TokenOut(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
