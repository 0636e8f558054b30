from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field, StrictInt

from tenantry.api.schemas import SingleLine, Strict


class ImpersonationStart(Strict):
    user_id: uuid.UUID
    reason: SingleLine = Field(min_length=1, max_length=500, examples=["ticket 4711: cannot see host web-1"])
    # At most TENANTRY_IMPERSONATION_MAX_MINUTES (checked by the service: 422 above it).
    minutes: StrictInt = Field(ge=1, examples=[30])
    read_only: bool = False


class ImpersonationOut(BaseModel):
    token: str
    expires_at: datetime
