from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictBool, StrictInt

from tenantry.api.schemas import JSON_INTEGER, SingleLine, Strict


class ImpersonationStart(Strict):
    user_id: uuid.UUID
    reason: SingleLine = Field(min_length=1, max_length=500, examples=["ticket 4711: cannot see host web-1"])
    # At most TENANTRY_IMPERSONATION_MAX_MINUTES (checked by the service: 422 above it).
    minutes: Annotated[StrictInt, Field(ge=1, examples=[30]), JSON_INTEGER]
    read_only: StrictBool = False


class ImpersonationOut(BaseModel):
    token: str
    expires_at: datetime
