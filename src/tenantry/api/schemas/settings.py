"""Settings: the catalog's values with where each comes from, and partial updates."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from tenantry.api.schemas import JsonValue
from tenantry.services.settings import CategoryView


class SettingsUpdate(BaseModel):
    """Only the keys to change, each with its new value (checked against the catalog: 422 naming
    the key). In a tenant, `null` resets a key to the system value."""

    model_config = ConfigDict(
        extra="allow",
        allow_inf_nan=False,
        json_schema_extra={"examples": [{"require_2fa": True, "session_idle_minutes": 60}]},
    )
    __pydantic_extra__: dict[str, JsonValue]  # text without control characters, finite numbers

    def changes(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class SettingOut(BaseModel):
    value: Any
    # default: the deployment (TENANTRY_*) or catalog default; system: set at run time by an
    # administrator; tenant: this tenant's override.
    source: Literal["default", "system", "tenant"]
    tenant_overridable: bool


class CategoryOut(BaseModel):
    category: str
    settings: dict[str, SettingOut]

    @classmethod
    def of(cls, category: str, view: CategoryView) -> CategoryOut:
        return cls(
            category=category,
            settings={
                k: SettingOut(value=v.value, source=v.source, tenant_overridable=v.tenant_overridable)
                for k, v in view.items()
            },
        )


class SettingsOut(BaseModel):
    categories: dict[str, CategoryOut]

    @classmethod
    def of(cls, views: dict[str, CategoryView]) -> SettingsOut:
        return cls(categories={name: CategoryOut.of(name, view) for name, view in views.items()})
