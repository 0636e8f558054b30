from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field, StrictBool

from tenantry.api.schemas import SingleLine, Strict
from tenantry.db.tables import AliasRole


class AliasRoleCreate(Strict):
    name: SingleLine = Field(min_length=1, max_length=100, examples=["support"])
    permissions: list[SingleLine] = Field(max_length=500)
    acknowledge_risk: StrictBool = False


class AliasRoleUpdate(Strict):
    name: SingleLine | None = Field(default=None, min_length=1, max_length=100)
    permissions: list[SingleLine] | None = Field(default=None, max_length=500)
    acknowledge_risk: StrictBool = False

    def changes(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.model_fields_set if k != "acknowledge_risk"}


class AliasRoleOut(BaseModel):
    id: uuid.UUID
    name: str
    permissions: list[str]
    created_at: datetime
    updated_at: datetime
    warnings: list[str] = []

    @classmethod
    def of(cls, r: AliasRole, warnings: list[str] | None = None) -> AliasRoleOut:
        return cls(
            id=r.id,
            name=r.name,
            permissions=sorted(r.permissions),
            created_at=r.created_at,
            updated_at=r.updated_at,
            warnings=warnings or [],
        )
