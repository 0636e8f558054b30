"""Settings: the catalog's values with where each comes from, and partial updates."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from tenantry.services.settings import CategoryView


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
