from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from tenantry.api.schemas import MultiLine, SingleLine, Strict
from tenantry.services.tenants import TenantView


class Branding(Strict):
    color: SingleLine | None = Field(default=None, max_length=7, examples=["#0055aa"])
    logo_url: SingleLine | None = Field(
        default=None, max_length=2048, examples=["https://example.com/logo.svg"]
    )


class TenantCreate(Strict):
    slug: SingleLine = Field(min_length=1, max_length=63, examples=["acme"])
    name: SingleLine = Field(min_length=1, max_length=200, examples=["Acme Corp"])
    description: MultiLine = Field(default="", max_length=4000)
    branding: Branding | None = None
    status: Literal["active", "suspended"] = "active"


class TenantUpdate(Strict):
    name: SingleLine | None = Field(default=None, min_length=1, max_length=200)
    description: MultiLine | None = Field(default=None, max_length=4000)
    branding: Branding | None = None
    status: Literal["active", "suspended"] | None = None

    def changes(self) -> dict[str, object]:
        """Only the fields the client sent, flattened to the service's names."""
        out: dict[str, object] = {}
        for key in self.model_fields_set:
            if key == "branding":
                if self.branding is None:
                    out["branding_color"] = None
                    out["branding_logo_url"] = None
                else:
                    for sub in self.branding.model_fields_set:
                        out[f"branding_{sub}"] = getattr(self.branding, sub)
            else:
                out[key] = getattr(self, key)
        return out


class TenantReplace(Strict):
    """PUT: the whole editable tenant. Every field must be sent (`branding: null` clears it), so
    an omitted field is a 422 rather than a silent reset (a forgotten `status` must not unsuspend)."""

    name: SingleLine = Field(min_length=1, max_length=200)
    description: MultiLine = Field(max_length=4000)
    branding: Branding | None
    status: Literal["active", "suspended"]

    def changes(self) -> dict[str, object]:
        """Every editable field, flattened to the service's names (absent branding parts → None)."""
        return {
            "name": self.name,
            "description": self.description,
            "branding_color": self.branding.color if self.branding else None,
            "branding_logo_url": self.branding.logo_url if self.branding else None,
            "status": self.status,
        }


class BrandingOut(BaseModel):
    color: str | None
    logo_url: str | None


class TenantOut(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    description: str
    branding: BrandingOut
    status: str
    member_count: int
    resource_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, v: TenantView) -> TenantOut:
        t = v.tenant
        return cls(
            id=t.id,
            slug=t.slug,
            name=t.name,
            description=t.description,
            branding=BrandingOut(color=t.branding_color, logo_url=t.branding_logo_url),
            status=t.status,
            member_count=v.member_count,
            resource_count=v.resource_count,
            created_at=t.created_at,
            updated_at=t.updated_at,
        )


class DeletionOut(BaseModel):
    deletion_batch_id: uuid.UUID
    counts: dict[str, int]


class ImpactOut(BaseModel):
    counts: dict[str, int]
